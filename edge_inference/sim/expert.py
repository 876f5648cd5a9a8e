"""The expert driver: pure pursuit on the lane centerline with curvature-limited speed.

It sees the true pose (not the image), so it is the reference a learned policy is
scored against and the source of demonstrations. Output is the normalized
VehicleCommand pair (+steering = left), the same thing a policy produces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from edge_inference.sim.dynamics import CarState, VehicleConfig
from edge_inference.sim.track import Track


@dataclass
class ExpertConfig:
    cruise_mps: float = field(default=1.5, metadata={"description": "speed on straights, m/s"})
    max_lateral_mps2: float = field(default=1.2, metadata={"description": "speed limit in bends: v² κ <= this"})
    lookahead_min_m: float = field(default=0.6, metadata={"description": "pure pursuit lookahead at rest, m"})
    lookahead_gain_s: float = field(default=0.35, metadata={"description": "extra lookahead per m/s, s"})
    preview_m: float = field(default=1.5, metadata={"description": "look this far ahead for bends when setting speed, m"})
    lane_offset_m: float = field(default=0.0, metadata={"description": "track a line this far left of center, m"})

    def __post_init__(self) -> None:
        if not self.cruise_mps > 0:
            raise ValueError(f"cruise speed must be > 0 m/s, got {self.cruise_mps}")
        if not self.lookahead_min_m > 0:
            raise ValueError(f"lookahead must be > 0 m, got {self.lookahead_min_m}")


class PurePursuitExpert:
    def __init__(self, track: Track, vehicle: VehicleConfig | None = None, cfg: ExpertConfig | None = None):
        self.track, self.vehicle, self.cfg = track, vehicle or VehicleConfig(), cfg or ExpertConfig()

    def target_speed(self, s_m: float) -> float:
        """m/s: cruise, reduced so the sharpest bend within the preview keeps lateral accel bounded."""
        c = self.cfg
        kappa = max(abs(self.track.curvature_at(s_m + d)) for d in (0.0, c.preview_m / 2, c.preview_m))
        return min(c.cruise_mps, math.sqrt(c.max_lateral_mps2 / kappa)) if kappa > 1e-6 else c.cruise_mps

    def act(self, state: CarState) -> tuple[float, float]:
        """(steering, throttle), both normalized to [-1, 1]."""
        c, veh = self.cfg, self.vehicle
        lane = self.track.locate(state.x, state.y)
        ld = c.lookahead_min_m + c.lookahead_gain_s * max(0.0, state.v)
        s_t = lane.s_m + ld
        tx, ty = self.track.point_at(s_t)
        h = self.track.heading_at(s_t)
        tx, ty = tx - math.sin(h) * c.lane_offset_m, ty + math.cos(h) * c.lane_offset_m
        dx, dy = tx - state.x, ty - state.y
        cy, sy = math.cos(state.yaw), math.sin(state.yaw)
        fx, fy = cy * dx + sy * dy, -sy * dx + cy * dy             # target in the car frame
        dist2 = max(fx * fx + fy * fy, 1e-6)
        delta = math.atan(2.0 * veh.wheelbase_m * fy / dist2)      # pure pursuit: κ = 2 y / d²
        steering = max(-1.0, min(1.0, delta / veh.max_steer_rad))
        throttle = max(0.0, min(1.0, self.target_speed(lane.s_m) / veh.max_speed_mps))
        return steering, throttle
