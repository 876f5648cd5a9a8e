"""Kinematic bicycle model of the RC car (rear-axle reference point).

    x' = v cos(yaw),  y' = v sin(yaw),  yaw' = v tan(delta) / L

The steering servo and the motor are first-order lags toward their commands
(servo also rate limited), which gives the IMU realistic accelerations and the
policy something to anticipate. Within a step the speed and steering are held,
so a constant command integrates *exactly* onto a circle of radius L / tan(delta).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class VehicleConfig:
    wheelbase_m: float = field(default=0.26, metadata={"description": "axle distance, m (1:10 RC car)"})
    max_steer_rad: float = field(default=0.42, metadata={"description": "front wheel angle at steering=±1, rad"})
    max_speed_mps: float = field(default=3.0, metadata={"description": "speed at throttle=+1, m/s"})
    max_reverse_mps: float = field(default=1.0, metadata={"description": "speed at throttle=-1, m/s"})
    steer_rate_rad_s: float = field(default=6.0, metadata={"description": "servo slew limit, rad/s"})
    steer_tau_s: float = field(default=0.05, metadata={"description": "servo time constant, s"})
    speed_tau_s: float = field(default=0.25, metadata={"description": "motor/ESC time constant, s"})
    max_brake_mps2: float = field(default=6.0, metadata={"description": "strongest deceleration, m/s²"})

    def __post_init__(self) -> None:
        for name in ("wheelbase_m", "max_steer_rad", "max_speed_mps", "steer_rate_rad_s",
                     "steer_tau_s", "speed_tau_s", "max_brake_mps2"):
            if not getattr(self, name) > 0:
                raise ValueError(f"vehicle {name} must be > 0, got {getattr(self, name)}")
        if not self.max_steer_rad < math.pi / 2:
            raise ValueError(f"max_steer_rad must be < pi/2, got {self.max_steer_rad}")


@dataclass
class CarState:
    x: float = 0.0          # m, map frame
    y: float = 0.0          # m
    yaw: float = 0.0        # rad, CCW from +x
    v: float = 0.0          # m/s, forward
    steer: float = 0.0      # rad, front wheel angle, + left
    yaw_rate: float = 0.0   # rad/s during the last step
    accel: float = 0.0      # m/s², longitudinal, during the last step


def command_to_targets(cfg: VehicleConfig, steering: float, throttle: float) -> tuple[float, float]:
    """Normalized [-1, 1] steering/throttle -> (wheel angle rad, target speed m/s)."""
    if not (math.isfinite(steering) and math.isfinite(throttle)):
        raise ValueError(f"non-finite command steering={steering} throttle={throttle}")
    steering = max(-1.0, min(1.0, steering))
    throttle = max(-1.0, min(1.0, throttle))
    speed = throttle * (cfg.max_speed_mps if throttle >= 0 else cfg.max_reverse_mps)
    return steering * cfg.max_steer_rad, speed


def step(cfg: VehicleConfig, s: CarState, steer_cmd_rad: float, speed_cmd_mps: float, dt: float) -> CarState:
    """Advance the car by ``dt`` s toward the commanded wheel angle and speed."""
    if not dt > 0:
        raise ValueError(f"dt must be > 0 s, got {dt}")
    steer_cmd = max(-cfg.max_steer_rad, min(cfg.max_steer_rad, steer_cmd_rad))
    alpha_s = 1.0 - math.exp(-dt / cfg.steer_tau_s)
    d_steer = alpha_s * (steer_cmd - s.steer)
    max_d = cfg.steer_rate_rad_s * dt
    steer = s.steer + max(-max_d, min(max_d, d_steer))

    alpha_v = 1.0 - math.exp(-dt / cfg.speed_tau_s)
    dv = alpha_v * (speed_cmd_mps - s.v)
    dv = max(-cfg.max_brake_mps2 * dt, dv)
    v = s.v + dv

    v_mid = 0.5 * (s.v + v)
    yaw_rate = v_mid * math.tan(steer) / cfg.wheelbase_m
    dyaw = yaw_rate * dt
    if abs(dyaw) > 1e-9:
        radius = v_mid / yaw_rate
        x = s.x + radius * (math.sin(s.yaw + dyaw) - math.sin(s.yaw))
        y = s.y - radius * (math.cos(s.yaw + dyaw) - math.cos(s.yaw))
    else:
        x = s.x + v_mid * dt * math.cos(s.yaw)
        y = s.y + v_mid * dt * math.sin(s.yaw)
    return CarState(x=x, y=y, yaw=s.yaw + dyaw, v=v, steer=steer, yaw_rate=yaw_rate, accel=dv / dt)


def turning_radius(cfg: VehicleConfig, steer_rad: float) -> float:
    """Radius of the rear axle's circle at a fixed wheel angle, m (inf when straight)."""
    t = math.tan(steer_rad)
    return math.inf if t == 0 else cfg.wheelbase_m / abs(t)
