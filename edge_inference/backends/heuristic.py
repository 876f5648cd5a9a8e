"""Numpy-only stand-in models for the walking skeleton and for machines without weights.

They have the same interface as the real runners in ``runners.py`` so the nodes
never branch on which one they hold:

* ``PolicyRunner.predict(image_rgb (H, W, 3) uint8, state (2,)) -> (chunk_size, action_dim)``
  with attributes ``chunk_size action_dim dt action_names backend_name model_hash``;
* ``BehaviorRunner.predict(window (window_length, 9)) -> (probs (C,), fsq_code int)``
  with attributes ``class_names window_length sample_rate_hz``.

They are deliberately simple rules, not learned models: a lane-centroid steering
heuristic and IMU physics rules. They only have to produce plausible, finite,
deterministic outputs so the graph can be exercised end to end (the policy
heuristic does drive the simulated track, the behavior rules label simulated
drives; see the tests).
"""

from __future__ import annotations

import hashlib

import numpy as np

from edge_inference.sim.behaviors import BEHAVIOR_CLASSES, BehaviorRules, instant_label

DEFAULT_ACTION_NAMES = ("steering", "throttle")
DEFAULT_BEHAVIOR_CLASSES = BEHAVIOR_CLASSES  # the simulator's behaviors: one vocabulary across the project


class HeuristicPolicyRunner:
    """Steer toward the centroid of grey (road-like) pixels in the lower half of the image.

    +steering turns left, so a road centroid left of the image centre gives a
    positive steering. Throttle is constant and lower in sharp turns. The chunk
    ramps from the current applied steering (the ACT state input) to the target
    over ``ramp_steps`` actions, like a smooth planned trajectory would.
    """

    backend_name = "heuristic"

    def __init__(self, chunk_size: int = 32, dt: float = 1.0 / 30.0, steering_gain: float = 1.5,
                 cruise_throttle: float = 0.3, ramp_steps: int = 5):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if not dt > 0:
            raise ValueError(f"dt must be > 0 s, got {dt}")
        self.chunk_size = int(chunk_size)
        self.action_dim = len(DEFAULT_ACTION_NAMES)
        self.dt = float(dt)
        self.action_names = list(DEFAULT_ACTION_NAMES)
        self.steering_gain = float(steering_gain)
        self.cruise_throttle = float(cruise_throttle)
        self.ramp_steps = max(1, int(ramp_steps))
        self.model_hash = _hash_of("heuristic-policy", chunk_size, dt, steering_gain, cruise_throttle, ramp_steps)

    def target_steering(self, image_rgb: np.ndarray) -> float:
        """Steering in [-1, 1] that points at the road centroid (0 when no road is visible)."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image_rgb.shape}")
        h, w, _ = image_rgb.shape
        lower = image_rgb[h // 2:: 2, ::2].astype(np.int16)  # subsample: a heuristic needs no full res
        spread = lower.max(axis=2) - lower.min(axis=2)
        value = lower.max(axis=2)
        road = (spread < 25) & (value > 40) & (value < 200)  # grey asphalt, not white lines or sky
        if road.sum() < 0.01 * road.size:
            return 0.0
        cols = np.nonzero(road)[1].astype(np.float64) * 2.0
        offset = (w / 2.0 - cols.mean()) / (w / 2.0)  # >0: road to the left
        return float(np.clip(self.steering_gain * offset, -1.0, 1.0))

    def predict(self, image_rgb: np.ndarray, state: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 + state [steering, throttle] -> (chunk_size, 2) float32."""
        state = np.asarray(state, dtype=np.float64).reshape(-1)
        if state.size != self.action_dim:
            raise ValueError(f"policy state must have {self.action_dim} values (steering, throttle), got {state.size}")
        target = self.target_steering(image_rgb)
        start = float(np.clip(state[0], -1.0, 1.0)) if np.isfinite(state[0]) else 0.0
        ramp = np.minimum(1.0, np.arange(1, self.chunk_size + 1) / self.ramp_steps)  # (H,)
        steering = start + (target - start) * ramp
        throttle = self.cruise_throttle * (1.0 - 0.5 * np.abs(steering))
        return np.stack([steering, throttle], axis=1).astype(np.float32)


class HeuristicBehaviorRunner:
    """Physics rules on an IMU window -> probabilities over the simulator's behavior classes.

    Mirrors how the ground truth is defined (``sim.behaviors.instant_label``), from
    IMU signals only: yaw rate from gyro z; speed from lateral accel / yaw rate
    while turning, else from the accelerometer's vibration (its noise grows with
    speed); hard braking from forward accel. Each sample gets a label, the window
    probabilities are the label fractions (a sudden stop anywhere dominates, as in
    ``window_label``). Config class names map by name; unknown names get ~0.
    """

    def __init__(self, class_names=DEFAULT_BEHAVIOR_CLASSES, window_length: int = 100,
                 sample_rate_hz: float = 50.0, rules: BehaviorRules | None = None,
                 accel_noise: float = 0.08, vibration_per_mps: float = 0.15):
        self.class_names = list(class_names)
        if not self.class_names:
            raise ValueError("behavior model needs at least one class name")
        self.window_length = int(window_length)
        self.sample_rate_hz = float(sample_rate_hz)
        self.rules = rules or BehaviorRules()
        self.accel_noise = float(accel_noise)  # m/s², accel noise at rest
        self.vibration_per_mps = float(vibration_per_mps)  # m/s² of extra accel noise per m/s
        self.model_hash = _hash_of("heuristic-behavior", *self.class_names, window_length, sample_rate_hz)
        self.backend_name = "heuristic"

    def sample_labels(self, window: np.ndarray) -> list[str]:
        """One canonical label per sample of a (T, 9) window."""
        accel, gyro = window[:, 0:3], window[:, 3:6]
        k = 5  # samples: averages sensor noise out of the rates and accelerations
        kernel = np.ones(k) / k
        yaw_rate = np.convolve(gyro[:, 2], kernel, mode="same")  # rad/s
        forward = np.convolve(accel[:, 0], kernel, mode="same")  # m/s²
        lateral = np.convolve(accel[:, 1], kernel, mode="same")
        vibration = float(np.std(np.diff(accel[:, 2]))) / np.sqrt(2.0)  # z has no motion: pure noise
        v_vibration = max(0.0, (vibration - self.accel_noise) / self.vibration_per_mps)
        turning = np.abs(yaw_rate) > self.rules.turn_yaw_rate
        speed = np.where(turning, np.abs(lateral) / np.maximum(np.abs(yaw_rate), 1e-3), v_vibration)
        return [instant_label(self.rules, float(v), float(w), float(a))
                for v, w, a in zip(speed, yaw_rate, forward)]

    def predict(self, window: np.ndarray) -> tuple[np.ndarray, int]:
        """(window_length, 9) -> (probabilities (C,) float32, fsq_code -1: no codebook)."""
        window = np.asarray(window, dtype=np.float64)
        if window.shape != (self.window_length, 9):
            raise ValueError(f"behavior window must be ({self.window_length}, 9), got {window.shape}")
        if not np.isfinite(window).all():
            raise ValueError("behavior window contains NaN/Inf")
        labels = self.sample_labels(window)
        counts = np.array([labels.count(name) for name in self.class_names], dtype=np.float64)
        if "sudden_stop" in labels and "sudden_stop" in self.class_names:
            counts[self.class_names.index("sudden_stop")] = len(labels)
        probs = (counts + 0.01) / (counts + 0.01).sum()
        return probs.astype(np.float32), -1


def _hash_of(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
