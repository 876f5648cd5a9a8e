"""Normalized command [-1, 1] <-> PWM pulse width (µs), per-channel calibration and clamps.

Each output channel (steering servo, throttle ESC) has its own calibration:
center/min/max pulse, trim, reverse, deadband, a magnitude limit and a rate
limit. The file lives in ``config/calibration.yaml`` and is written by
``edge-inference calibrate``. Rate limits only slow a move *away* from neutral
(protecting the ESC and drivetrain); a move toward neutral is never delayed,
because stopping must not wait.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from edge_inference.core.errors import EdgeInferenceError, yaml_problem
from edge_inference.core.files import write_text_atomic
from edge_inference.core.serial_protocol import (
    CHANNEL_STEERING,
    CHANNEL_THROTTLE,
    PULSE_MAX_US,
    PULSE_MIN_US,
    ChannelLimits,
)


class CalibrationError(EdgeInferenceError, ValueError):
    """A calibration that would drive a channel outside safe pulse widths."""


@dataclass
class ChannelCalibration:
    center_us: int = 1500   # neutral pulse, µs
    min_us: int = 1000      # pulse at -1 (hard lower limit), µs
    max_us: int = 2000      # pulse at +1 (hard upper limit), µs
    trim_us: int = 0        # added to center (servo horn / ESC neutral offset), µs
    reverse: bool = False   # flip the direction (servo mounted mirrored)
    deadband: float = 0.0   # |x| below this maps to neutral (normalized)
    limit: float = 1.0      # |x| is clamped to this before mapping (normalized)
    max_rate: float = 0.0   # normalized units per second away from neutral; 0 = unlimited

    def validate(self, name: str = "channel") -> "ChannelCalibration":
        for key in ("center_us", "min_us", "max_us", "trim_us"):
            if not isinstance(getattr(self, key), int) or isinstance(getattr(self, key), bool):
                raise CalibrationError(f"{name}.{key} must be an integer number of µs, got {getattr(self, key)!r}")
        if not PULSE_MIN_US <= self.min_us < self.max_us <= PULSE_MAX_US:
            raise CalibrationError(f"{name}: need {PULSE_MIN_US} <= min_us < max_us <= {PULSE_MAX_US}, "
                                   f"got min_us={self.min_us} max_us={self.max_us}")
        if not self.min_us <= self.neutral_us <= self.max_us:
            raise CalibrationError(f"{name}: center_us+trim_us={self.neutral_us} "
                                   f"outside [{self.min_us}, {self.max_us}]")
        for key, lo, hi in (("deadband", 0.0, 0.5), ("limit", 0.0, 1.0), ("max_rate", 0.0, 1000.0)):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise CalibrationError(f"{name}.{key}={v!r} outside [{lo}, {hi}]")
        return self

    @property
    def neutral_us(self) -> int:
        return self.center_us + self.trim_us

    def to_us(self, x: float) -> int:
        """Normalized [-1, 1] -> pulse µs (deadband, limit, reverse, then piecewise-linear around neutral)."""
        if not math.isfinite(x):
            raise CalibrationError(f"cannot map non-finite value {x!r}")
        x = max(-self.limit, min(self.limit, x))
        if abs(x) < self.deadband:
            x = 0.0
        if self.reverse:
            x = -x
        n = self.neutral_us
        us = n + x * (self.max_us - n) if x >= 0 else n + x * (n - self.min_us)
        return int(max(self.min_us, min(self.max_us, round(us))))

    def to_normalized(self, us: int) -> float:
        """Pulse µs -> normalized [-1, 1] (inverse of ``to_us`` without deadband/limit)."""
        n = self.neutral_us
        x = (us - n) / (self.max_us - n) if us >= n else (us - n) / (n - self.min_us) if n > self.min_us else 0.0
        x = max(-1.0, min(1.0, x))
        return -x if self.reverse else x

    def board_limits(self, channel: int) -> ChannelLimits:
        """The hard limits the board itself enforces (it clamps even a buggy bridge)."""
        return ChannelLimits(channel, self.min_us, self.neutral_us, self.max_us)


@dataclass
class Calibration:
    steering: ChannelCalibration = field(default_factory=lambda: ChannelCalibration(deadband=0.0, max_rate=0.0))
    throttle: ChannelCalibration = field(default_factory=lambda: ChannelCalibration(min_us=1300, max_us=1700,
                                                                                    deadband=0.05, max_rate=0.0))

    def validate(self) -> "Calibration":
        self.steering.validate("steering")
        self.throttle.validate("throttle")
        return self

    def neutral_us(self) -> tuple[int, int]:
        return self.steering.neutral_us, self.throttle.neutral_us

    def board_limits(self) -> list[ChannelLimits]:
        return [self.steering.board_limits(CHANNEL_STEERING), self.throttle.board_limits(CHANNEL_THROTTLE)]

    def to_dict(self) -> dict:
        return {"steering": dataclasses.asdict(self.steering), "throttle": dataclasses.asdict(self.throttle)}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        if not isinstance(data, dict):
            raise CalibrationError("calibration must be a mapping with 'steering' and 'throttle', "
                                   f"got {type(data).__name__}")
        unknown = set(data) - {"steering", "throttle"}
        if unknown:
            raise CalibrationError(f"unknown calibration sections: {sorted(unknown)}")
        names = {f.name for f in dataclasses.fields(ChannelCalibration)}
        channels = {}
        for ch in ("steering", "throttle"):
            section = data.get(ch, {}) or {}
            bad = set(section) - names
            if bad:
                raise CalibrationError(f"unknown keys in calibration.{ch}: {sorted(bad)}")
            channels[ch] = ChannelCalibration(**{**dataclasses.asdict(getattr(cls(), ch)), **section})
        return cls(**channels).validate()


def default_calibration_path() -> Path:
    """``config/calibration.yaml`` of this source tree / installed share directory."""
    from edge_inference.core.resources import config_path  # noqa: PLC0415  (small helper owned by the lead)
    return Path(config_path("calibration.yaml"))


def load_calibration(path: str | Path) -> Calibration:
    import yaml
    p = Path(path)
    if not p.is_file():
        raise CalibrationError(f"calibration file {p} not found (run `edge-inference calibrate` to create one)")
    try:
        with p.open() as f:
            data = yaml.safe_load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"not a valid YAML calibration file: {yaml_problem(exc, p)}") from exc
    try:
        return Calibration.from_dict(data)
    except (TypeError, AttributeError, ValueError) as exc:  # incl. CalibrationError: name the file
        raise CalibrationError(f"{p}: {exc}") from exc


def save_calibration(cal: Calibration, path: str | Path) -> None:
    import yaml
    cal.validate()
    header = ("# PWM calibration (µs) per channel; written by `edge-inference calibrate`.\n"
              "# deadband/limit in normalized units, max_rate in normalized units per second\n"
              "# away from neutral (0 = unlimited); moves toward neutral are never delayed.\n")
    write_text_atomic(path, header + yaml.safe_dump(cal.to_dict(), sort_keys=False))


class RateLimiter:
    """Limits how fast a normalized value moves away from 0; moves toward 0 pass unchanged."""

    def __init__(self, max_rate: float):
        self.max_rate = max_rate
        self.value = 0.0
        self._t: float | None = None

    def step(self, target: float, now: float) -> float:
        dt = 0.0 if self._t is None else max(0.0, now - self._t)
        self._t = now
        if self.max_rate <= 0.0:
            self.value = target
            return target
        if abs(target) <= abs(self.value) and target * self.value >= 0.0:
            self.value = target  # toward (or onto) neutral: never delayed
        else:
            start = 0.0 if self.value * target < 0.0 else self.value  # a sign change passes neutral at once
            step = self.max_rate * dt
            self.value = start + max(-step, min(step, target - start))
        return self.value

    def reset(self) -> None:
        self.value, self._t = 0.0, None


class PwmMapper:
    """Calibration + rate limiters: normalized (steering, throttle) -> (steering_us, throttle_us)."""

    def __init__(self, cal: Calibration):
        self.cal = cal.validate()
        self._rates = (RateLimiter(cal.steering.max_rate), RateLimiter(cal.throttle.max_rate))

    def map(self, steering: float, throttle: float, now: float) -> tuple[int, int]:
        s = self._rates[0].step(max(-1.0, min(1.0, steering)), now)
        t = self._rates[1].step(max(-1.0, min(1.0, throttle)), now)
        return self.cal.steering.to_us(s), self.cal.throttle.to_us(t)

    def neutral(self) -> tuple[int, int]:
        for r in self._rates:
            r.reset()
        return self.cal.neutral_us()

    def to_normalized(self, steering_us: int, throttle_us: int) -> tuple[float, float]:
        return self.cal.steering.to_normalized(steering_us), self.cal.throttle.to_normalized(throttle_us)
