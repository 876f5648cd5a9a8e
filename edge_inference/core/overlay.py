"""Annotated camera frame for operators: gauges, predicted path, behavior and latency.

Pure numpy/OpenCV on an (H, W, 3) uint8 RGB frame; the monitor node only feeds it.
The chunk's predicted path (``markers.integrate_chunk``, base_link ground points)
is projected into the image through the camera mount (base_link -> camera_link,
the same numbers the monitor publishes as a static TF) and the pinhole
intrinsics K from ``camera/camera_info``. camera_link follows the ROS body
convention (x forward, y left, z up); the optical frame used by K is z forward,
x right, y down (REP 103).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge_inference.core.config_fields import param

MIN_DEPTH_M = 0.05  # points closer to (or behind) the lens than this are not drawn

# RGB colours
PATH_RGB = (30, 150, 255)
GAUGE_BG_RGB = (40, 40, 40)
STEER_RGB = (255, 200, 0)
FORWARD_RGB = (40, 220, 60)
REVERSE_RGB = (230, 50, 30)
TEXT_RGB = (255, 255, 255)
TEXT_BG_RGB = (20, 20, 20)


@dataclass
class CameraMountConfig:
    """Pose of camera_link in base_link (defaults: the sim car's camera, 20° down)."""

    base_frame: str = param("base_link", "vehicle frame (rear axle on the ground)", read_only=True)
    camera_frame: str = param("camera_link", "camera body frame (x forward, z up)", read_only=True)
    camera_x_m: float = param(0.20, "camera ahead of base_link, m")
    camera_y_m: float = param(0.0, "camera left of base_link, m")
    camera_z_m: float = param(0.25, "camera above the ground, m")
    camera_roll_rad: float = param(0.0, "camera roll about its x axis, rad")
    camera_pitch_rad: float = param(0.349, "camera pitch, rad (positive looks down)")
    camera_yaw_rad: float = param(0.0, "camera yaw, rad (positive looks left)")


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """3x3 rotation R = Rz(yaw)·Ry(pitch)·Rx(roll) (ROS fixed-axis RPY)."""
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def quaternion_rpy(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of the same rotation, for the static TF."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)


# camera_link (x fwd, y left, z up) -> optical (x right, y down, z fwd)
BODY_TO_OPTICAL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def intrinsics_from_fov(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Square-pixel pinhole K for a horizontal field of view (what camera_node advertises)."""
    if not (width > 0 and height > 0 and 0 < hfov_deg < 180):
        raise ValueError(f"bad camera size {width}x{height} or hfov {hfov_deg} deg")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def project_points(points_base: np.ndarray, K: np.ndarray, mount: CameraMountConfig) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) points in base_link, m -> ((N, 2) pixel u, v; (N,) bool in front of the lens)."""
    pts = np.asarray(points_base, dtype=np.float64).reshape(-1, 3)
    R = rotation_rpy(mount.camera_roll_rad, mount.camera_pitch_rad, mount.camera_yaw_rad)  # camera -> base
    t = np.array([mount.camera_x_m, mount.camera_y_m, mount.camera_z_m])
    in_camera = (pts - t) @ R                       # (N, 3) = R^T (p - t), camera_link
    optical = in_camera @ BODY_TO_OPTICAL.T         # (N, 3) optical frame
    depth = optical[:, 2]
    valid = depth > MIN_DEPTH_M
    uvw = optical @ np.asarray(K, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / np.where(valid, depth, 1.0)[:, None]
    return uv, valid


@dataclass
class OverlayContent:
    """What to draw; ``None`` parts are shown as missing ("-") rather than invented."""

    steering: float | None = None         # current command, normalized [-1, 1] (+ left)
    throttle: float | None = None         # normalized [-1, 1] (+ forward)
    path_base: np.ndarray | None = None   # (N, 3) predicted poses [x, y, yaw] in base_link
    behavior_label: str | None = None
    behavior_confidence: float | None = None
    latency_ms: float | None = None       # image stamp -> chunk publish
    source: str = ""                      # e.g. "policy" / "neutral"


def _text_scale(width: int) -> tuple[float, int]:
    scale = max(0.35, width / 800.0)
    return scale, max(1, int(round(scale * 1.5)))


def _put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int) -> None:
    """White text on a dark box: readable on sky, asphalt and grass alike, even at 320 px wide."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = org
    cv2.rectangle(img, (x - 2, y - th - 2), (x + tw + 2, y + base), TEXT_BG_RGB, -1)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_RGB, thick, cv2.LINE_AA)


def steering_gauge_geometry(width: int, height: int) -> tuple[int, int, int, int]:
    """(x_left, x_right, y_top, y_bottom) of the horizontal steering bar at the bottom centre."""
    half = int(width * 0.2)
    bar_h = max(4, height // 30)
    y1 = height - 3 - bar_h
    return width // 2 - half, width // 2 + half, y1, y1 + bar_h


def throttle_gauge_geometry(width: int, height: int) -> tuple[int, int, int, int]:
    """(x_left, x_right, y_top, y_bottom) of the vertical throttle bar at the right edge."""
    bar_w = max(4, width // 40)
    return width - 3 - bar_w, width - 3, int(height * 0.2), int(height * 0.8)


def _centre_gauge(img: np.ndarray, rect: tuple[int, int, int, int], value: float | None, horizontal: bool,
                  color) -> None:
    """Bar ``rect`` = (x0, x1, y0, y1) filled from its centre by ``value`` in [-1, 1] toward -x / -y."""
    x0, x1, y0, y1 = rect
    cv2.rectangle(img, (x0, y0), (x1, y1), GAUGE_BG_RGB, -1)
    if value is None or not math.isfinite(value):
        return  # missing: an empty gauge, never a made-up reading
    v = float(np.clip(value, -1.0, 1.0))
    lo, hi = (x0, x1) if horizontal else (y0, y1)
    centre = (lo + hi) // 2
    end = int(round(centre - v * (hi - lo) / 2))
    if end == centre:
        return
    a, b = min(centre, end), max(centre, end)
    corners = ((a, y0), (b, y1)) if horizontal else ((x0, a), (x1, b))
    cv2.rectangle(img, *corners, color(v), -1)


def draw_overlay(rgb: np.ndarray, content: OverlayContent, K: np.ndarray | None,
                 mount: CameraMountConfig) -> np.ndarray:
    """Annotated copy of the (H, W, 3) uint8 RGB frame (the input is not modified)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"overlay needs an (H, W, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
    img = np.ascontiguousarray(rgb).copy()
    h, w = img.shape[:2]
    scale, thick = _text_scale(w)

    if content.path_base is not None and K is not None and len(content.path_base) >= 2:
        pts = np.column_stack([content.path_base[:, 0], content.path_base[:, 1], np.zeros(len(content.path_base))])
        uv, valid = project_points(pts, K, mount)
        # draw segment by segment so points behind the lens break the line instead of wrapping
        for a, b, va, vb in zip(uv[:-1], uv[1:], valid[:-1], valid[1:]):
            if va and vb and np.all(np.abs(np.concatenate([a, b])) < 10 * max(w, h)):
                cv2.line(img, (int(round(a[0])), int(round(a[1]))), (int(round(b[0])), int(round(b[1]))),
                         PATH_RGB, max(2, thick + 1), cv2.LINE_AA)

    # steering: bar at the bottom filled from the centre toward the turn (+ = left, so toward -x)
    _centre_gauge(img, steering_gauge_geometry(w, h), content.steering, horizontal=True,
                  color=lambda v: STEER_RGB)
    # throttle: bar on the right filled up (forward, green) or down (reverse, red) from the middle
    _centre_gauge(img, throttle_gauge_geometry(w, h), content.throttle, horizontal=False,
                  color=lambda v: FORWARD_RGB if v > 0 else REVERSE_RGB)

    line_h = int(30 * scale) + 6
    label = content.behavior_label if content.behavior_label else "-"
    conf = f" {100 * content.behavior_confidence:.0f}%" if content.behavior_confidence is not None else ""
    lat = f"{content.latency_ms:.1f} ms" if content.latency_ms is not None else "- ms"
    steer = f"{content.steering:+.2f}" if content.steering is not None else "-"
    thr = f"{content.throttle:+.2f}" if content.throttle is not None else "-"
    lines = [f"{label}{conf}", f"latency {lat}", f"str {steer} thr {thr} {content.source}".rstrip()]
    for i, text in enumerate(lines):
        _put_text(img, text, (4, line_h * (i + 1)), scale, thick)
    return img
