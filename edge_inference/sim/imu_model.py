"""IMU (accel, gyro, mag) readings consistent with the car's planar motion, plus noise.

Body frame (REP-103): x forward, y left, z up. The accelerometer measures specific
force, so a level car at rest reads +g on z (REP-145). On flat ground:
  accel = (dv/dt, v * yaw_rate, g),  gyro = (0, 0, yaw_rate),
  mag = the Earth field (map frame, ENU) rotated into the body by -yaw.
Noise is white Gaussian plus a constant per-run bias, so a classifier cannot
key on perfectly clean zeros.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge_inference.sim.dynamics import CarState

GRAVITY = 9.80665  # m/s²


@dataclass
class ImuConfig:
    rate_hz: float = field(default=50.0, metadata={"description": "IMU sample rate, Hz"})
    accel_noise: float = field(default=0.08, metadata={"description": "accel white noise std, m/s²"})
    gyro_noise: float = field(default=0.005, metadata={"description": "gyro white noise std, rad/s"})
    mag_noise: float = field(default=0.3e-6, metadata={"description": "mag white noise std, T"})
    accel_bias: float = field(default=0.05, metadata={"description": "accel bias std (drawn per run), m/s²"})
    gyro_bias: float = field(default=0.002, metadata={"description": "gyro bias std (drawn per run), rad/s"})
    earth_field_t: tuple[float, float, float] = (0.0, 22e-6, -42e-6)  # ENU, T (mid-latitude)
    vibration: float = field(default=0.15, metadata={"description": "extra accel noise per m/s of speed, m/s²"})

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"IMU rate must be > 0 Hz, got {self.rate_hz}")
        for n in ("accel_noise", "gyro_noise", "mag_noise", "accel_bias", "gyro_bias", "vibration"):
            if getattr(self, n) < 0:
                raise ValueError(f"IMU {n} must be >= 0, got {getattr(self, n)}")


@dataclass(frozen=True)
class ImuSample:
    accel: np.ndarray   # (3,) m/s², body frame
    gyro: np.ndarray    # (3,) rad/s
    mag: np.ndarray     # (3,) T

    def as_row(self) -> np.ndarray:
        """(9,) [accel xyz, gyro xyz, mag xyz]: the imu_window column order."""
        return np.concatenate([self.accel, self.gyro, self.mag])


def ideal_reading(state: CarState, earth_field_t=(0.0, 22e-6, -42e-6)) -> ImuSample:
    """Noise-free reading for the motion during the car's last step."""
    accel = np.array([state.accel, state.v * state.yaw_rate, GRAVITY])
    gyro = np.array([0.0, 0.0, state.yaw_rate])
    c, s = math.cos(state.yaw), math.sin(state.yaw)
    bx, by, bz = earth_field_t
    mag = np.array([c * bx + s * by, -s * bx + c * by, bz])
    return ImuSample(accel, gyro, mag)


class ImuModel:
    """Noisy IMU with per-run biases (seeded: runs are reproducible)."""

    def __init__(self, cfg: ImuConfig | None = None, seed: int = 0):
        self.cfg = cfg or ImuConfig()
        self.rng = np.random.default_rng(seed)
        self.accel_bias = self.rng.normal(0, self.cfg.accel_bias, 3)
        self.gyro_bias = self.rng.normal(0, self.cfg.gyro_bias, 3)

    def read(self, state: CarState) -> ImuSample:
        c, r = self.cfg, self.rng
        ideal = ideal_reading(state, c.earth_field_t)
        accel_std = c.accel_noise + c.vibration * abs(state.v)
        return ImuSample(
            accel=ideal.accel + self.accel_bias + r.normal(0, accel_std, 3),
            gyro=ideal.gyro + self.gyro_bias + r.normal(0, c.gyro_noise, 3),
            mag=ideal.mag + r.normal(0, c.mag_noise, 3),
        )
