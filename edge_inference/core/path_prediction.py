"""Predicted path of an action chunk (kinematic bicycle model) (the rviz markers are built in ``edge_inference.ros.markers``).

An ACT chunk is a list of future normalized [steering, throttle] actions. To
show what the policy *intends*, the chunk is integrated from the car's current
pose (the origin of ``base_link``, the rear axle, x forward, y left) with the
same model as the simulator: speed = throttle × max speed, wheel angle =
steering × max steer, yaw' = v·tan(δ)/L. Each action is held for ``dt`` and
integrated exactly (arc of radius L/tan δ), so a constant chunk gives a circle
whatever ``dt`` is, and the markers are comparable to the simulator's motion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_inference.core.config_fields import param

STRAIGHT_EPS = 1e-9  # |tan δ| below this integrates as a straight line (no division by ~0)


@dataclass
class PathModelConfig:
    """Bicycle-model constants turning normalized actions into motion (defaults: the 1:10 sim car)."""

    wheelbase_m: float = param(0.26, "axle distance used to integrate chunks, m", range=(0.01, 10.0))
    max_steer_rad: float = param(0.42, "front wheel angle at steering=±1, rad", range=(0.01, 1.5))
    max_speed_mps: float = param(3.0, "speed at throttle=+1, m/s", range=(0.0, 100.0))
    max_reverse_mps: float = param(1.0, "speed at throttle=-1, m/s", range=(0.0, 100.0))

    def __post_init__(self) -> None:
        if not self.wheelbase_m > 0:
            raise ValueError(f"wheelbase_m must be > 0, got {self.wheelbase_m}")
        if not 0 < self.max_steer_rad < math.pi / 2:
            raise ValueError(f"max_steer_rad must be in (0, pi/2), got {self.max_steer_rad}")
        if self.max_speed_mps < 0 or self.max_reverse_mps < 0:
            raise ValueError("max_speed_mps and max_reverse_mps must be >= 0")


def action_to_motion(cfg: PathModelConfig, steering: float, throttle: float) -> tuple[float, float]:
    """Normalized (steering, throttle) -> (wheel angle rad, speed m/s); clipped to [-1, 1] like the bridge."""
    s = float(np.clip(steering, -1.0, 1.0))
    t = float(np.clip(throttle, -1.0, 1.0))
    return s * cfg.max_steer_rad, t * (cfg.max_speed_mps if t >= 0 else cfg.max_reverse_mps)


def integrate_chunk(actions: np.ndarray, dt: float, cfg: PathModelConfig,
                    steering_index: int = 0, throttle_index: int = 1) -> np.ndarray:
    """(H, A) normalized actions held ``dt`` s each -> (H+1, 3) poses [x m, y m, yaw rad] in base_link.

    Row 0 is the origin (the car now); row k the pose after k actions.
    """
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[0] == 0:
        raise ValueError(f"actions must be (H, A) with H >= 1, got shape {actions.shape}")
    if max(steering_index, throttle_index) >= actions.shape[1]:
        raise ValueError(f"action_dim {actions.shape[1]} has no column {max(steering_index, throttle_index)}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt}")
    if not np.all(np.isfinite(actions)):
        raise ValueError("actions contain NaN/inf: no path to draw")
    poses = np.zeros((actions.shape[0] + 1, 3))
    x = y = yaw = 0.0
    for k, row in enumerate(actions):
        delta, v = action_to_motion(cfg, row[steering_index], row[throttle_index])
        ds = v * dt                                  # m along the arc
        curvature = math.tan(delta) / cfg.wheelbase_m  # 1/m
        if abs(curvature) < STRAIGHT_EPS:
            x += ds * math.cos(yaw)
            y += ds * math.sin(yaw)
        else:
            dyaw = ds * curvature
            x += (math.sin(yaw + dyaw) - math.sin(yaw)) / curvature
            y -= (math.cos(yaw + dyaw) - math.cos(yaw)) / curvature
            yaw += dyaw
        poses[k + 1] = (x, y, yaw)
    return poses


def chunk_actions(msg) -> np.ndarray:
    """ActionChunk message -> (horizon, action_dim) array, checking the declared shape."""
    flat = np.asarray(msg.actions, dtype=np.float32)
    h, a = int(msg.horizon), int(msg.action_dim)
    if h * a != flat.size or h == 0 or a == 0:
        raise ValueError(f"ActionChunk declares {h}x{a} but carries {flat.size} values")
    return flat.reshape(h, a)


def action_indices(action_names) -> tuple[int, int]:
    """Columns of steering and throttle, by name when the model names them (else 0, 1)."""
    names = list(action_names)
    return (names.index("steering") if "steering" in names else 0,
            names.index("throttle") if "throttle" in names else 1)
