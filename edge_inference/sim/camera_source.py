"""Camera frame source ``sim``: renders the simulated car's forward view from the latest `sim/pose`.

Selected with ``camera_source: "sim"`` or ``"sim:key=value,..."``, where keys are
TrackConfig fields prefixed ``track_`` (``track_shape=bean``) and lighting
options (``gain``, ``texture_seed``, ``texture_strength``, ``shadows``,
``noise_std``). The track must match the sim node's; both default to the same oval.
Before the first pose arrives it shows the start pose, so the camera node
streams from the first tick.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from edge_inference.core.errors import EdgeInferenceError
from edge_inference.sim.render import CameraConfig, LightingConfig, Renderer
from edge_inference.sim.track import Track, TrackConfig

_TRACK_KEYS = {"track_shape": str, "track_straight_m": float, "track_radius_m": float, "track_width_m": float}
_LIGHT_KEYS = {"gain": float, "texture_seed": int, "texture_strength": float, "shadows": int, "noise_std": float}
_CAM_KEYS = {"hfov_deg": float, "cam_height_m": float, "pitch_deg": float, "max_range_m": float}


class SimSourceError(EdgeInferenceError, ValueError):
    """A malformed ``sim:`` camera source spec."""


def parse_spec(spec: str) -> tuple[TrackConfig, LightingConfig, dict]:
    """'track_shape=bean,gain=0.8' -> (TrackConfig, LightingConfig, camera overrides)."""
    track, light, cam = {}, {}, {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise SimSourceError(f"sim camera source: expected key=value, got {item!r}")
        for table, out in ((_TRACK_KEYS, track), (_LIGHT_KEYS, light), (_CAM_KEYS, cam)):
            if key in table:
                try:
                    out[key] = table[key](value)
                except ValueError as exc:
                    raise SimSourceError(f"sim camera source: bad value for {key}: {value!r}") from exc
                break
        else:
            raise SimSourceError(f"sim camera source: unknown key {key!r}; known: "
                                 f"{sorted({**_TRACK_KEYS, **_LIGHT_KEYS, **_CAM_KEYS})}")
    tc = TrackConfig(**{k.removeprefix("track_"): v for k, v in track.items()})
    return tc, LightingConfig(**light), cam


class SimCameraSource:
    """FrameSource over the simulator: ``open()``, ``read() -> (H, W, 3) uint8 RGB``, ``close()``."""

    def __init__(self, spec: str, width: int, height: int, fps: float, node=None, pose_topic: str = "sim/pose"):
        self.track_cfg, self.lighting, cam = parse_spec(spec)
        self.cam = CameraConfig(width=width, height=height, **cam)
        self.node, self.pose_topic = node, pose_topic
        self._renderer: Renderer | None = None
        self._sub = None
        self._lock = threading.Lock()
        self._pose: tuple[float, float, float] | None = None
        self.frames = 0

    def set_pose(self, x: float, y: float, yaw: float) -> None:
        with self._lock:
            self._pose = (x, y, yaw)

    def _on_pose(self, msg) -> None:
        q = msg.pose.orientation
        yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
        self.set_pose(msg.pose.position.x, msg.pose.position.y, yaw)

    def open(self) -> None:
        track = Track(self.track_cfg)
        self._renderer = Renderer(track, self.cam, self.lighting)
        if self.node is not None and self._sub is None:
            from geometry_msgs.msg import PoseStamped

            from edge_inference.ros.qos import sensor_qos
            self._sub = self.node.create_subscription(PoseStamped, self.pose_topic, self._on_pose, sensor_qos())
        if self._pose is None:
            self.set_pose(*track.start_pose())

    def read(self) -> np.ndarray | None:
        if self._renderer is None:
            return None
        with self._lock:
            pose = self._pose
        self.frames += 1
        return self._renderer.render(*pose)

    def close(self) -> None:
        if self._sub is not None and self.node is not None:
            self.node.destroy_subscription(self._sub)
        self._sub = None
        self._renderer = None


def make_sim_source(spec: str, width: int, height: int, fps: float, node=None, **_) -> SimCameraSource:
    return SimCameraSource(spec, width, height, fps, node=node)
