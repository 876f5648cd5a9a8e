"""rviz markers of a predicted path (``edge_inference.core.path_prediction``) and of the current command."""
from __future__ import annotations

import math

import numpy as np

from edge_inference.core.path_prediction import PathModelConfig, action_to_motion

# --- visualization_msgs ------------------------------------------------------------------------
PATH_ID, COMMAND_ID = 0, 1
PATH_COLOR = (0.1, 0.6, 1.0, 1.0)      # RGBA: predicted path (blue)
FORWARD_COLOR = (0.1, 0.9, 0.2, 1.0)   # command arrow, driving forward
REVERSE_COLOR = (0.9, 0.2, 0.1, 1.0)   # command arrow, reversing
NEUTRAL_COLOR = (0.6, 0.6, 0.6, 1.0)   # command arrow, stopped
ARROW_HORIZON_S = 0.5                  # the arrow spans the distance covered in this time
ARROW_MIN_LENGTH_M = 0.05              # a stopped car still shows which way the wheels point


def _color(rgba):
    from std_msgs.msg import ColorRGBA
    r, g, b, a = rgba
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(a))


def path_marker(poses: np.ndarray, header, ns: str = "policy"):
    """LINE_STRIP through the (N, 3) poses, 2 cm wide, in ``header.frame_id``."""
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker
    m = Marker()
    m.header = header
    m.ns, m.id, m.type, m.action = ns, PATH_ID, Marker.LINE_STRIP, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x = 0.02
    m.color = _color(PATH_COLOR)
    m.points = [Point(x=float(px), y=float(py), z=0.0) for px, py, _ in poses]
    return m


def command_marker(steering: float, throttle: float, cfg: PathModelConfig, header, ns: str = "policy"):
    """ARROW from the rear axle along the commanded wheel angle; length ∝ commanded speed."""
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker
    delta, v = action_to_motion(cfg, steering, throttle)
    length = max(ARROW_MIN_LENGTH_M, abs(v) * ARROW_HORIZON_S)
    direction = 1.0 if v >= 0 else -1.0
    m = Marker()
    m.header = header
    m.ns, m.id, m.type, m.action = ns, COMMAND_ID, Marker.ARROW, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x, m.scale.y, m.scale.z = 0.03, 0.06, 0.06  # shaft diameter, head diameter, head length (m)
    m.color = _color(FORWARD_COLOR if v > 0 else REVERSE_COLOR if v < 0 else NEUTRAL_COLOR)
    m.points = [Point(x=0.0, y=0.0, z=0.0),
                Point(x=direction * length * math.cos(delta), y=direction * length * math.sin(delta), z=0.0)]
    return m


def build_marker_array(header, cfg: PathModelConfig, poses: np.ndarray | None = None,
                       command: tuple[float, float] | None = None, ns: str = "policy"):
    """MarkerArray with the path and/or command; a missing part is sent as DELETE so stale ones vanish."""
    from visualization_msgs.msg import Marker, MarkerArray
    out = MarkerArray()
    for mid, present, build in ((PATH_ID, poses is not None, lambda: path_marker(poses, header, ns)),
                                (COMMAND_ID, command is not None, lambda: command_marker(*command, cfg, header, ns))):
        if present:
            out.markers.append(build())
        else:
            gone = Marker()
            gone.header, gone.ns, gone.id, gone.action = header, ns, mid, Marker.DELETE
            out.markers.append(gone)
    return out
