"""A held-out tail of one drive: the test split `train-act --holdout-tail` and `eval --holdout-tail` share.

Why a tail and a gap: consecutive frames of a drive are nearly identical, so a random
split would test on frames the policy has almost seen. Holding out the last fraction of
a drive (by time) and also dropping the `gap_s` seconds before it from training leaves a
test stretch the policy has never seen anything adjacent to.

The split is defined on frame stamps only, so a Donkey tub and the bag `import-tub`
writes from it (one camera frame per record, stamped with the record's time) give the
same tail: the last `round(fraction * N)` of the N frames in time order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_inference.core.errors import EdgeInferenceError

DEFAULT_GAP_S = 10.0
IMAGE_TOPIC = "/camera/image_raw"


class HoldoutError(EdgeInferenceError, ValueError):
    """A held-out tail that cannot be cut from this data (bad fraction or gap, too few frames)."""


@dataclass(frozen=True)
class TailSplit:
    """Frames stamped at or after `start_ns` are held out; training uses those before `train_end_ns`."""

    start_ns: int
    train_end_ns: int  # start_ns - gap
    fraction: float
    gap_s: float

    def test_mask(self, stamps_ns: np.ndarray) -> np.ndarray:
        return np.asarray(stamps_ns, dtype=np.int64) >= self.start_ns

    def train_mask(self, stamps_ns: np.ndarray) -> np.ndarray:
        return np.asarray(stamps_ns, dtype=np.int64) < self.train_end_ns

    def to_dict(self) -> dict:
        return {"fraction": self.fraction, "gap_s": self.gap_s, "start_ns": int(self.start_ns),
                "train_end_ns": int(self.train_end_ns)}


def tail_split(stamps_ns: np.ndarray, fraction: float, gap_s: float = DEFAULT_GAP_S) -> TailSplit:
    """The last `fraction` of the frames (in time order) held out, `gap_s` seconds before it dropped."""
    if not 0.0 < fraction < 1.0:
        raise HoldoutError(f"holdout tail fraction must be in (0, 1), got {fraction}")
    if not gap_s >= 0.0:
        raise HoldoutError(f"gap_s must be >= 0, got {gap_s}")
    stamps = np.sort(np.asarray(stamps_ns, dtype=np.int64))
    n_test = int(round(fraction * stamps.size))
    if n_test < 1 or n_test >= stamps.size:
        raise HoldoutError(f"a {fraction:g} tail of {stamps.size} frames leaves no test or no training frames")
    start = int(stamps[stamps.size - n_test])
    split = TailSplit(start, start - int(round(gap_s * 1e9)), float(fraction), float(gap_s))
    if not split.train_mask(stamps).any():
        raise HoldoutError(f"no frame is more than {gap_s:g} s before the held-out {fraction:g} tail")
    return split


def frame_stamps(path: str | Path, image_topic: str = IMAGE_TOPIC) -> np.ndarray:
    """(N,) int64 ns, ascending: the frame stamps of a Donkey tub (records the loaders keep) or a bag's camera."""
    path = Path(path)
    if path.is_dir() and (path / "manifest.json").is_file():
        from edge_inference.datasets.donkey_tub import ImportSummary, read_tub

        stamps = [r.stamp_ns for r in read_tub(path, ImportSummary())]
    elif path.suffix == ".npz":
        raise HoldoutError(f"{path}: .npz demonstrations carry no frame stamps; a holdout tail needs a tub or a bag")
    else:
        from edge_inference.core.bag_io import read_bag, stamp_ns

        stamps = [stamp_ns(m.msg.header) for m in read_bag(path, topics=[image_topic])]
    if not stamps:
        raise HoldoutError(f"{path}: no camera frames to split")
    return np.sort(np.asarray(stamps, dtype=np.int64))
