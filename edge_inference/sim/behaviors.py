"""Ground-truth behavior labels from the car's motion, and scripted drives that show each behavior.

The labels are defined on the true motion (speed, yaw rate, longitudinal
acceleration), never on the IMU, so the IMU classifier is trained and scored
against what the car really did. Class names are configuration
(``sim_node.behavior_classes`` in config/rover.yaml); the rules below refer to
them by these canonical names.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

BEHAVIOR_CLASSES = ("stationary", "straight_slow", "straight_medium", "straight_fast",
                    "turn_left", "turn_right", "sudden_stop")


@dataclass
class BehaviorRules:
    stationary_mps: float = field(default=0.08, metadata={"description": "below this speed the car is stationary, m/s"})
    slow_max_mps: float = field(default=0.9, metadata={"description": "straight_slow below this, m/s"})
    medium_max_mps: float = field(default=1.7, metadata={"description": "straight_medium below this, m/s"})
    turn_yaw_rate: float = field(default=0.35, metadata={"description": "|yaw rate| above this is a turn, rad/s"})
    sudden_stop_mps2: float = field(default=3.0, metadata={"description": "deceleration above this is a sudden stop, m/s²"})
    class_names: tuple[str, ...] = BEHAVIOR_CLASSES

    def __post_init__(self) -> None:
        missing = set(BEHAVIOR_CLASSES) - set(self.class_names)
        if missing:
            raise ValueError(f"behavior class_names lack {sorted(missing)}; the labeller needs all of "
                             f"{list(BEHAVIOR_CLASSES)} (order and extra names are free)")
        if not 0 < self.stationary_mps < self.slow_max_mps < self.medium_max_mps:
            raise ValueError("speed thresholds must satisfy 0 < stationary < slow_max < medium_max")


def instant_label(rules: BehaviorRules, v: float, yaw_rate: float, accel: float) -> str:
    """Label of one instant of motion (m/s, rad/s, m/s²)."""
    if accel < -rules.sudden_stop_mps2:
        return "sudden_stop"
    if abs(v) < rules.stationary_mps:
        return "stationary"
    if yaw_rate > rules.turn_yaw_rate:
        return "turn_left"
    if yaw_rate < -rules.turn_yaw_rate:
        return "turn_right"
    if abs(v) < rules.slow_max_mps:
        return "straight_slow"
    return "straight_medium" if abs(v) < rules.medium_max_mps else "straight_fast"


def window_label(labels: list[str], min_purity: float = 0.0) -> str | None:
    """Label of a window of instant labels: sudden_stop if it contains one, else the majority.

    Returns None when the majority covers less than ``min_purity`` of the window
    (an ambiguous window: skip it in datasets).
    """
    if not labels:
        raise ValueError("empty label window")
    if "sudden_stop" in labels:
        return "sudden_stop"
    name, count = Counter(labels).most_common(1)[0]
    return name if count >= min_purity * len(labels) else None


@dataclass(frozen=True)
class Segment:
    """Hold one command for a while: (steering, throttle) normalized, duration s."""

    behavior: str
    steering: float
    throttle: float
    duration_s: float


def scripted_drive(rng: np.random.Generator, n_segments: int = 40, max_speed_mps: float = 3.0) -> list[Segment]:
    """A random open-ground drive visiting every behavior, for the IMU dataset.

    Sudden stops come from speed (throttle cut to 0 from >= 1.8 m/s); gentle stops
    ramp down through slow segments so only real emergency stops get that label.
    """
    def thr(v):
        return v / max_speed_mps

    segs: list[Segment] = []
    for _ in range(n_segments):
        kind = rng.choice(["stationary", "straight_slow", "straight_medium", "straight_fast",
                           "turn_left", "turn_right", "sudden_stop"])
        d = float(rng.uniform(2.5, 5.0))
        if kind == "stationary":
            segs += [Segment("straight_slow", 0.0, thr(0.5), 1.0), Segment(kind, 0.0, 0.0, d)]
        elif kind.startswith("straight"):
            v = {"straight_slow": (0.3, 0.8), "straight_medium": (1.0, 1.6), "straight_fast": (1.9, 2.8)}[kind]
            segs.append(Segment(kind, float(rng.normal(0, 0.02)), thr(rng.uniform(*v)), d))
        elif kind.startswith("turn"):
            sign = 1.0 if kind == "turn_left" else -1.0
            # from lane-like bends (R ~ 2.5 m) to full lock (R ~ 0.6 m)
            segs.append(Segment(kind, sign * float(rng.uniform(0.2, 1.0)), thr(rng.uniform(0.7, 2.0)), d))
        else:
            segs += [Segment("straight_fast", 0.0, thr(rng.uniform(2.0, 2.8)), 2.5),
                     Segment(kind, 0.0, 0.0, 2.0)]
    return segs
