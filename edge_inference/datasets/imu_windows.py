"""Labelled IMU windows from .npz or CSV files (any recording, not only HAPT).

Both formats hold raw windows in the robot's layout [accel m/s^2 xyz, gyro rad/s
xyz, mag T xyz] at one sample rate:

- ``.npz``: ``windows`` (N, T, 9) float, ``labels`` (N,) int or str; optional
  ``users`` (N,) int (for the split by user), ``class_names`` (K,) str,
  ``sample_rate_hz`` scalar.
- ``.csv``: one row per sample with a header containing ``window,label,ax,ay,az,
  gx,gy,gz,mx,my,mz`` and optionally ``user``; rows of one window are consecutive
  in time. Missing mag columns are read as NaN.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edge_inference.core.files import InputFileError, load_npz
from edge_inference.datasets.hapt import WindowSet

CSV_SIGNALS = ["ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz"]


def _label_indices(raw_labels: np.ndarray, class_names: list[str] | None) -> tuple[np.ndarray, list[str]]:
    if raw_labels.size == 0:
        raise InputFileError("no labels")
    if raw_labels.dtype.kind in "iu":
        names = list(class_names) if class_names is not None else [str(i) for i in range(int(raw_labels.max()) + 1)]
        if raw_labels.min() < 0 or raw_labels.max() >= len(names):
            raise InputFileError(f"labels out of range for {len(names)} class names")
        return raw_labels.astype(np.int64), names
    text = np.asarray([str(x) for x in raw_labels])
    names = list(class_names) if class_names is not None else sorted(set(text.tolist()))
    unknown = sorted(set(text.tolist()) - set(names))
    if unknown:
        raise InputFileError(f"labels {unknown} are not in class_names {names}")
    return np.asarray([names.index(t) for t in text], dtype=np.int64), names


def load_npz_windows(path: str | Path, sample_rate_hz: float | None = None) -> WindowSet:
    data = load_npz(path, what="labelled IMU windows (.npz)")
    if "windows" not in data or "labels" not in data:
        raise InputFileError(f"{path}: needs arrays 'windows' (N,T,9) and 'labels' (N,), has {list(data)}")
    windows = np.asarray(data["windows"], dtype=np.float32)
    names = [str(n) for n in data["class_names"]] if "class_names" in data else None
    labels, names = _label_indices(np.asarray(data["labels"]), names)
    users = np.asarray(data["users"], dtype=np.int64) if "users" in data else np.zeros(len(labels), np.int64)
    rate = float(data["sample_rate_hz"]) if "sample_rate_hz" in data else sample_rate_hz
    return _checked(windows, labels, users, names, rate, path)


def load_csv_windows(path: str | Path, sample_rate_hz: float | None = None) -> WindowSet:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        required = {"window", "label", *CSV_SIGNALS[:6]}
        missing = sorted(required - set(reader.fieldnames or []))
        if missing:
            raise InputFileError(f"{path}: CSV misses columns {missing}")
        order: list[str] = []
        rows: dict[str, list[list[float]]] = {}
        meta: dict[str, tuple[str, int]] = {}
        for row in reader:
            key = row["window"]
            if key not in rows:
                order.append(key)
                rows[key] = []
                meta[key] = (row["label"], int(row.get("user") or 0))
            rows[key].append([float(row[c]) if row.get(c) not in (None, "") else np.nan for c in CSV_SIGNALS])
    lengths = {len(rows[k]) for k in order}
    if len(lengths) != 1:
        raise InputFileError(f"{path}: windows have different lengths {sorted(lengths)}")
    windows = np.asarray([rows[k] for k in order], dtype=np.float32)
    raw_labels = np.asarray([meta[k][0] for k in order])
    if all(label.lstrip("-").isdigit() for label in raw_labels):
        raw_labels = raw_labels.astype(np.int64)
    labels, names = _label_indices(raw_labels, None)
    users = np.asarray([meta[k][1] for k in order], dtype=np.int64)
    return _checked(windows, labels, users, names, sample_rate_hz, path)


def load_labelled_windows(path: str | Path, sample_rate_hz: float | None = None) -> WindowSet:
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz_windows(path, sample_rate_hz)
    if suffix == ".csv":
        return load_csv_windows(path, sample_rate_hz)
    raise InputFileError(f"{path}: labelled IMU windows must be .npz or .csv")


def _checked(windows, labels, users, names, rate, path) -> WindowSet:
    if windows.ndim == 0 or len(windows) == 0:
        raise InputFileError(f"{path}: no windows")
    if windows.ndim != 3 or windows.shape[2] != 9:
        raise InputFileError(f"{path}: windows must be (N, T, 9) [accel, gyro, mag], got {windows.shape}")
    if len(labels) != windows.shape[0] or len(users) != windows.shape[0]:
        raise InputFileError(f"{path}: {windows.shape[0]} windows but {len(labels)} labels / {len(users)} users")
    if rate is None:
        raise InputFileError(f"{path}: sample rate unknown; pass --sample-rate-hz or store 'sample_rate_hz'")
    return WindowSet(windows, labels, users, names, float(rate), {"dataset": str(Path(path).name)})
