"""Camera ablation: does the policy's camera measurably matter?

The same policy is replayed on the same bag, scheduler and state inputs, with each
frame it is given replaced by another frame of the same drive, and scored the same way.
If its error does not rise beyond noise, the camera is not what it drives by.

Which replacement, and why shuffled frames: a frame drawn (fixed seed) from a sample of
the scored stretch's own frames is a real image of this track in this light, so the
network sees nothing out of its input distribution; only the link between the picture
and the moment is broken (permutation importance). A mean image (the bag's, or a flat
training-mean one) is a blurred picture no camera takes, and a policy's response to it
says more about that artefact than about what the camera contributes. Only images are
sampled, never commands, so nothing of the scored teleop leaks into the ablation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

POOL_SIZE = 256  # frames kept for shuffling: bounded memory on long, high-resolution bags
REPLACEMENT = "shuffled frames: each frame replaced by a random frame of the scored stretch (fixed seed)"


def frame_pool(bag: str | Path, image_topic: str, start_ns: int | None = None, size: int = POOL_SIZE,
               seed: int = 0) -> list[np.ndarray]:
    """A uniform sample (reservoir, seeded) of the bag's RGB frames stamped at or after start_ns."""
    from edge_inference.core.bag_io import UnsupportedImageEncodingError, image_to_rgb, read_bag, stamp_ns

    rng = np.random.default_rng(seed)
    pool: list[np.ndarray] = []
    seen = 0
    for item in read_bag(bag, topics=[image_topic]):
        if start_ns is not None and stamp_ns(item.msg.header) < start_ns:
            continue
        try:
            rgb = image_to_rgb(item.msg)
        except (UnsupportedImageEncodingError, ValueError):
            continue  # the replay counts those; the pool only needs usable frames
        seen += 1
        if len(pool) < size:
            pool.append(rgb)
        else:
            j = int(rng.integers(seen))
            if j < size:
                pool[j] = rgb
    return pool


class ShuffledFrames:
    """A policy runner whose camera frames are replaced by random frames from a pool."""

    def __init__(self, policy: Any, frames: list[np.ndarray], seed: int = 0):
        if not frames:
            raise ValueError("camera ablation: the bag has no usable frames to shuffle")
        self.policy = policy
        self.frames = frames
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> Any:  # action_names, dt, chunk_size, ... of the wrapped runner
        if name == "policy":
            raise AttributeError(name)
        return getattr(self.policy, name)

    def predict(self, image_rgb: np.ndarray, state: np.ndarray) -> np.ndarray:
        return self.policy.predict(self.frames[int(self._rng.integers(len(self.frames)))], state)


def _steering_errors(result) -> tuple[np.ndarray, np.ndarray]:
    """(|pred - teleop| steering per tick, NaN where neutral or not scored; ticks stamps)."""
    names = list(result.action_names) or ["steering"]
    steer = names.index("steering") if "steering" in names else 0
    t = np.asarray(result.tick_ns, dtype=np.int64)
    err = np.abs(np.stack(result.tick_pred)[:, steer] - np.stack(result.tick_target)[:, steer])
    if result.score_from_ns is not None:
        err[t < result.score_from_ns] = np.nan
    return err, t


def camera_ablation(bag: str | Path, config, policy: Any, full_result, seed: int = 0) -> dict:
    """Replay with shuffled frames; its scores and the paired steering difference to the full policy."""
    from edge_inference.evaluation.metrics import paired_difference, verdict
    from edge_inference.evaluation.replay import evaluate_bag

    frames = frame_pool(bag, config.image_topic, full_result.score_from_ns, seed=seed)
    metrics, result = evaluate_bag(str(bag), config, ShuffledFrames(policy, frames, seed))
    if not full_result.tick_pred or not result.tick_pred:
        return {}
    full_err, full_t = _steering_errors(full_result)
    ablated_err, ablated_t = _steering_errors(result)
    if not np.array_equal(full_t, ablated_t):
        raise ValueError("camera ablation: the two replays scored different ticks")
    policy = metrics["policy"]
    diff = paired_difference(ablated_err, full_err)
    return {"replacement": REPLACEMENT, "pool_frames": len(frames), "seed": seed,
            "scored_samples": policy["scored_samples"], "per_dimension": policy["per_dimension"],
            "versus_strongest_baseline": policy["versus_strongest_baseline"],
            "throttle_after_pauses": policy.get("throttle_after_pauses", {}),
            "ablated_minus_full_steering_mae": diff,
            "camera": {"higher": "matters", "lower": "hurts", "within noise": "does not measurably matter",
                       "negligible": "barely matters", "not measured": "not measured"}[
                verdict(diff, float(np.nanmean(full_err)))]}
