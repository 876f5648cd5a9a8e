"""Shared test data and helpers; no torch (the robot profile imports this without it).

- ``ACT_RUNTIME``, ``act_samples``, ``imu_window``: the ACT runtime contract and plausible inputs.
- ``needs_torch`` / ``NO_TORCH``: the skip for tests of training, export and the torch backends.
- Models: ``onnx_models`` (ONNX, built with onnx.helper: runners, backends, quantization) and
  ``torch_models`` (nn.Modules and checkpoints: export and torch-backend tests only).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
NO_TORCH = "needs torch (training, export, torch backends): not installed, as on the robot"
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason=NO_TORCH)

ACT_RUNTIME = {"image_size": [24, 32], "chunk_size": 8, "state_dim": 2, "action_dim": 2, "dt": 1 / 30,
               "action_names": ["steering", "throttle"], "action_std": [0.5, 0.1]}
HAPT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hapt"
FSQ_HAPT_MODEL = Path(__file__).resolve().parents[1] / "models" / "fsq_hapt"


def act_samples(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Smooth random images + states, like camera frames more than white noise."""
    rng = np.random.default_rng(seed)
    h, w = ACT_RUNTIME["image_size"]
    base = rng.random((n, 3, 1, 1)) * 0.6 + 0.2
    ramp = np.linspace(0, 1, w)[None, None, None, :] * rng.random((n, 1, 1, 1)) * 0.4
    image = np.clip(base + ramp + 0.05 * rng.standard_normal((n, 3, h, w)), 0, 1).astype(np.float32)
    state = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return {"image": image, "state": state}


def imu_window(n: int = 100, seed: int = 0) -> np.ndarray:
    """A plausible raw (n, 9) window: gravity on z, small motion, mag ~ 50 µT."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 50.0
    accel = np.stack([0.5 * np.sin(2 * np.pi * 1.5 * t), 0.2 * np.cos(2 * np.pi * t),
                      9.81 + 0.3 * np.sin(2 * np.pi * 2 * t)], axis=1) + 0.05 * rng.standard_normal((n, 3))
    gyro = 0.1 * rng.standard_normal((n, 3))
    mag = np.tile([20e-6, 0.0, 45e-6], (n, 1))
    return np.concatenate([accel, gyro, mag], axis=1).astype(np.float32)
