"""A closed lane on flat ground: centerline polyline, width, and pose queries.

The world frame is ENU-like ("map"): x east, y north, z up, metres. The lane is a
closed centerline sampled densely (``spacing_m``) so nearest-point queries
are a vectorised search over segments; curvature is smooth enough for a
kinematic car at RC-car scale (1:10, lane ~0.9 m wide, radii >= 2 m).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge_inference.core.errors import EdgeInferenceError

SHAPES = ("oval", "circle", "bean")


class TrackError(EdgeInferenceError, ValueError):
    """A track configuration that cannot produce a valid closed lane."""


@dataclass
class TrackConfig:
    shape: str = field(default="oval", metadata={"description": "lane shape", "choices": SHAPES})
    straight_m: float = field(default=6.0, metadata={"description": "oval: length of each straight, m"})
    radius_m: float = field(default=2.5, metadata={"description": "corner (oval, bean) or circle radius, m"})
    width_m: float = field(default=0.9, metadata={"description": "lane width edge to edge, m"})
    spacing_m: float = field(default=0.05, metadata={"description": "centerline sample spacing, m"})

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise TrackError(f"unknown track shape {self.shape!r}; expected one of {SHAPES}")
        if not self.width_m > 0:
            raise TrackError(f"lane width must be > 0 m, got {self.width_m}")
        if not self.radius_m > self.width_m / 2:
            raise TrackError(f"radius {self.radius_m} m must exceed half the lane width ({self.width_m / 2} m)")
        if self.straight_m < 0:
            raise TrackError(f"straight length must be >= 0 m, got {self.straight_m}")
        if not 0 < self.spacing_m <= 0.5:
            raise TrackError(f"spacing must be in (0, 0.5] m, got {self.spacing_m}")


@dataclass(frozen=True)
class LanePose:
    """Where a point is relative to the lane."""

    s_m: float            # arc length of the nearest centerline point, [0, length)
    cte_m: float          # signed cross-track error: + left of the centerline (driving direction)
    heading_rad: float    # centerline heading at s, rad (counter-clockwise from +x)


def _oval(straight: float, radius: float, spacing: float) -> np.ndarray:
    """Stadium driven counter-clockwise, starting at the middle of the bottom straight heading +x."""
    half = straight / 2
    pts = []
    n_s = max(1, int(round(straight / spacing)))
    n_c = max(8, int(round(math.pi * radius / spacing)))
    xs = np.linspace(0.0, half, max(1, n_s // 2), endpoint=False)
    pts.append(np.stack([xs, np.full_like(xs, -radius)], 1))
    a = np.linspace(-math.pi / 2, math.pi / 2, n_c, endpoint=False)
    pts.append(np.stack([half + radius * np.cos(a), radius * np.sin(a)], 1))
    xs = np.linspace(half, -half, n_s, endpoint=False)
    pts.append(np.stack([xs, np.full_like(xs, radius)], 1))
    a = np.linspace(math.pi / 2, 3 * math.pi / 2, n_c, endpoint=False)
    pts.append(np.stack([-half + radius * np.cos(a), radius * np.sin(a)], 1))
    xs = np.linspace(-half, 0.0, max(1, n_s - n_s // 2), endpoint=False)
    pts.append(np.stack([xs, np.full_like(xs, -radius)], 1))
    return np.concatenate(pts)


def _bean(radius: float, spacing: float) -> np.ndarray:
    """A smooth closed curve with left and right bends (radius modulated around the origin)."""
    base = radius * 2.2
    n = max(64, int(round(2 * math.pi * base / spacing)))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False) - math.pi / 2
    r = base * (1.0 + 0.22 * np.cos(2 * (t + math.pi / 2)) + 0.08 * np.sin(3 * t))
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


class Track:
    """A closed lane: centerline points (N, 2) m, headings, cumulative arc length."""

    def __init__(self, cfg: TrackConfig | None = None):
        self.cfg = cfg or TrackConfig()
        c = self.cfg
        if c.shape == "oval":
            pts = _oval(c.straight_m, c.radius_m, c.spacing_m)
        elif c.shape == "circle":
            n = max(64, int(round(2 * math.pi * c.radius_m / c.spacing_m)))
            a = np.linspace(-math.pi / 2, 3 * math.pi / 2, n, endpoint=False)
            pts = np.stack([c.radius_m * np.cos(a), c.radius_m * np.sin(a)], 1)
        else:
            pts = _bean(c.radius_m, c.spacing_m)
        self.points = pts.astype(np.float64)                       # (N, 2) m
        nxt = np.roll(self.points, -1, axis=0)
        self.seg = nxt - self.points                               # (N, 2) m
        self.seg_len = np.linalg.norm(self.seg, axis=1)            # (N,) m
        if np.any(self.seg_len <= 0):
            raise TrackError("centerline has repeated points")
        self.s = np.concatenate([[0.0], np.cumsum(self.seg_len)[:-1]])  # (N,) m
        self.length = float(self.seg_len.sum())
        self.headings = np.arctan2(self.seg[:, 1], self.seg[:, 0])  # (N,) rad
        self.half_width = c.width_m / 2

    # -- queries ---------------------------------------------------------
    def start_pose(self) -> tuple[float, float, float]:
        """(x m, y m, yaw rad) at s=0 on the centerline, facing the driving direction."""
        return float(self.points[0, 0]), float(self.points[0, 1]), float(self.headings[0])

    def locate(self, x: float, y: float) -> LanePose:
        """Project a point onto the centerline (exact nearest point over all segments)."""
        p = np.array([x, y]) - self.points                       # (N, 2)
        t = np.clip((p * self.seg).sum(1) / self.seg_len**2, 0.0, 1.0)
        d = p - t[:, None] * self.seg
        i = int(np.argmin((d * d).sum(1)))
        cross = self.seg[i, 0] * p[i, 1] - self.seg[i, 1] * p[i, 0]
        dist = float(np.hypot(*d[i]))
        s = (self.s[i] + t[i] * self.seg_len[i]) % self.length
        return LanePose(s_m=float(s), cte_m=math.copysign(dist, cross), heading_rad=float(self.headings[i]))

    def point_at(self, s: float) -> np.ndarray:
        """Centerline point (2,) m at arc length s (wraps around)."""
        s = s % self.length
        i = int(np.searchsorted(self.s, s, side="right") - 1)
        t = (s - self.s[i]) / self.seg_len[i]
        return self.points[i] + t * self.seg[i]

    def heading_at(self, s: float) -> float:
        i = int(np.searchsorted(self.s, s % self.length, side="right") - 1)
        return float(self.headings[i])

    def curvature_at(self, s: float, span_m: float = 0.5) -> float:
        """Signed curvature 1/m (+ = left bend), from the heading change over ``span_m``."""
        dh = _wrap(self.heading_at(s + span_m / 2) - self.heading_at(s - span_m / 2))
        return dh / span_m

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right lane edge polylines (N, 2) m."""
        normal = np.stack([-np.sin(self.headings), np.cos(self.headings)], 1)
        return self.points + normal * self.half_width, self.points - normal * self.half_width

    def bounds(self, margin_m: float = 0.0) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the lane edges plus margin, m."""
        left, right = self.edges()
        allp = np.concatenate([left, right])
        lo, hi = allp.min(0) - margin_m, allp.max(0) + margin_m
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _wrap(a: float) -> float:
    """Angle to [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def wrap_angle(a: float) -> float:
    return _wrap(a)
