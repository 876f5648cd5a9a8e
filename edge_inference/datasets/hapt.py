"""UCI HAPT raw recordings -> labelled raw IMU windows, split by user.

Dataset: "Smartphone-Based Recognition of Human Activities and Postural Transitions"
(Reyes-Ortiz, Oneto, Samà, Parra, Anguita, Neurocomputing 2016), CC BY 4.0 on the UCI
repository; waist-worn phone, 50 Hz. Expected layout under ``root``:
``RawData/acc_expNN_userUU.txt`` (g), ``RawData/gyro_expNN_userUU.txt`` (rad/s),
``RawData/labels.txt`` (``exp user activity start end``, 1-based inclusive samples) and
``activity_labels.txt``.

Windows are returned in the robot's raw layout (T, 9) = [accel m/s^2, gyro rad/s,
mag T] with mag = NaN (the phone recordings have none), so training and the robot
go through the same ``features.py`` path. Two ways to cut windows:

- ``load_hapt_windows``: windows lie fully inside one labelled segment (UCI HAR style:
  fixed length, 50 % overlap by default). Clean, but not what the robot sees.
- ``load_hapt_streamed``: every window the behavior node's windower produces on the
  whole recording (``imu_window.ImuWindower`` at 50 Hz: the first window ends at sample
  ``window_length - 1``, then one every ``stride`` samples), labelled by the one rule in
  ``evaluation/window_labels.py`` (class, TRANSITION, UNLABELLED or MIXED).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_inference.core.files import InputFileError
from edge_inference.models.fsq.features import STANDARD_GRAVITY

SAMPLE_RATE_HZ = 50.0
BASIC_ACTIVITIES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
_RAW_NAME = re.compile(r"acc_exp(\d+)_user(\d+)\.txt$")


@dataclass
class WindowSet:
    """Labelled raw windows: (N, T, 9) float32, labels (N,) int, users (N,) int."""

    windows: np.ndarray
    labels: np.ndarray
    users: np.ndarray
    class_names: list[str]
    sample_rate_hz: float
    source: dict = field(default_factory=dict)
    #: (N,) experiment (recording) id per window, when known (streamed HAPT windows).
    recordings: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, mask: np.ndarray) -> "WindowSet":
        return WindowSet(self.windows[mask], self.labels[mask], self.users[mask],
                         self.class_names, self.sample_rate_hz, dict(self.source),
                         None if self.recordings is None else self.recordings[mask])


def read_activity_labels(root: Path) -> dict[int, str]:
    """activity id -> name from ``activity_labels.txt``."""
    names = {}
    for line in (root / "activity_labels.txt").read_text().splitlines():
        if line.strip():
            ident, name = line.split(maxsplit=1)
            names[int(ident)] = name.strip()
    return names



def _hapt_layout(root: str | Path, activities: list[str] | None) -> tuple[Path, dict[int, str], list[str]]:
    """(RawData folder, activity id -> name, wanted class names) of a UCI HAPT directory, checked."""
    root = Path(root)
    raw = root / "RawData"
    if not (raw / "labels.txt").is_file() or not (root / "activity_labels.txt").is_file():
        raise InputFileError(f"{root} is not a UCI HAPT directory (needs RawData/labels.txt "
                             "and activity_labels.txt)")
    id_to_name = read_activity_labels(root)
    wanted = list(activities) if activities else list(BASIC_ACTIVITIES)
    unknown = sorted(set(wanted) - set(id_to_name.values()))
    if unknown:
        raise InputFileError(f"unknown HAPT activities {unknown}; known: {sorted(id_to_name.values())}")
    return raw, id_to_name, wanted

def load_hapt_windows(root: str | Path, window_length: int = 100, stride: int = 50,
                      activities: list[str] | None = None, users: list[int] | None = None) -> WindowSet:
    """Cut labelled windows from the raw HAPT recordings.

    ``activities``: class names to keep (default: the six basic activities), in the
    order that becomes the class index. ``users``: restrict to these user ids.
    """
    raw, id_to_name, wanted = _hapt_layout(root, activities)
    class_of_id = {i: wanted.index(n) for i, n in id_to_name.items() if n in wanted}

    segments = np.loadtxt(raw / "labels.txt", dtype=np.int64, ndmin=2)  # (S, 5)
    recordings: dict[tuple[int, int], np.ndarray] = {}
    windows, labels, window_users = [], [], []
    for exp, user, activity, start, end in segments:
        if activity not in class_of_id or (users is not None and user not in users):
            continue
        key = (int(exp), int(user))
        if key not in recordings:
            recordings[key] = _read_recording(raw, *key)  # (T, 9)
        signal = recordings[key][start - 1:end]  # 1-based inclusive -> slice
        for begin in range(0, signal.shape[0] - window_length + 1, stride):
            windows.append(signal[begin:begin + window_length])
            labels.append(class_of_id[activity])
            window_users.append(user)
    if not windows:
        raise InputFileError(f"no HAPT windows for activities {wanted} users {users}")
    return WindowSet(np.stack(windows).astype(np.float32), np.asarray(labels, dtype=np.int64),
                     np.asarray(window_users, dtype=np.int64), wanted, SAMPLE_RATE_HZ,
                     {"dataset": "UCI HAPT (Reyes-Ortiz et al., Neurocomputing 2016), CC BY 4.0",
                      "window_length": window_length, "stride": stride})


def recording_sample_labels(segments: np.ndarray, n_samples: int, id_to_name: dict[int, str],
                            class_names: list[str]) -> np.ndarray:
    """(n_samples,) label per sample of one recording from its ``labels.txt`` rows.

    A model class -> its index; any other annotated activity (the postural
    transitions) -> ``TRANSITION``; not annotated -> ``UNLABELLED``.
    """
    from edge_inference.evaluation.window_labels import TRANSITION, UNLABELLED

    labels = np.full(n_samples, UNLABELLED, dtype=np.int64)
    for _, _, activity, start, end in segments:
        name = id_to_name[int(activity)]
        labels[start - 1:min(int(end), n_samples)] = class_names.index(name) if name in class_names else TRANSITION
    return labels


def load_hapt_streamed(root: str | Path, window_length: int = 100, stride: int = 25,
                       activities: list[str] | None = None, users: list[int] | None = None) -> WindowSet:
    """Every window the behavior node cuts from each whole recording, labelled by ``window_label``.

    Labels are class indices or the negative codes of ``evaluation/window_labels.py``;
    ``recordings`` holds the experiment id of each window (windows are in stream order).
    """
    from edge_inference.evaluation.window_labels import window_labels

    raw, id_to_name, wanted = _hapt_layout(root, activities)
    segments = np.loadtxt(raw / "labels.txt", dtype=np.int64, ndmin=2)
    windows, labels, window_users, exps = [], [], [], []
    for exp, user in sorted({(int(e), int(u)) for e, u in segments[:, :2]}):
        if users is not None and user not in users:
            continue
        signal = _read_recording(raw, exp, user)
        rows = segments[(segments[:, 0] == exp) & (segments[:, 1] == user)]
        per_sample = recording_sample_labels(rows, signal.shape[0], id_to_name, wanted)
        # The windower emits a grid row once the next sample has arrived: the last sample never lands.
        ends = np.arange(window_length - 1, signal.shape[0] - 1, stride)
        if ends.size == 0:
            continue
        windows.append(np.stack([signal[e - window_length + 1:e + 1] for e in ends]))
        labels.append(window_labels(per_sample, ends, window_length))
        window_users.append(np.full(ends.size, user))
        exps.append(np.full(ends.size, exp))
    if not windows:
        raise ValueError(f"no HAPT recordings for users {users}")
    return WindowSet(np.concatenate(windows).astype(np.float32), np.concatenate(labels),
                     np.concatenate(window_users).astype(np.int64), wanted, SAMPLE_RATE_HZ,
                     {"dataset": "UCI HAPT (Reyes-Ortiz et al., Neurocomputing 2016), CC BY 4.0",
                      "window_length": window_length, "stride": stride, "windows": "streamed"},
                     np.concatenate(exps).astype(np.int64))


def _read_recording(raw: Path, exp: int, user: int) -> np.ndarray:
    """One experiment -> (T, 9) [accel m/s^2, gyro rad/s, mag NaN]."""
    acc_g = np.loadtxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt", ndmin=2)  # (T, 3) g
    gyro = np.loadtxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt", ndmin=2)  # (T, 3) rad/s
    n = min(acc_g.shape[0], gyro.shape[0])
    mag = np.full((n, 3), np.nan)
    return np.concatenate([acc_g[:n] * STANDARD_GRAVITY, gyro[:n], mag], axis=1)


def available_users(root: str | Path) -> list[int]:
    """User ids that have raw recordings under ``root``."""
    found = {int(m.group(2)) for p in (Path(root) / "RawData").iterdir() if (m := _RAW_NAME.search(p.name))}
    return sorted(found)


def split_by_user(data: WindowSet, test_users: list[int]) -> tuple[WindowSet, WindowSet]:
    """(train, test): no user appears in both."""
    test_mask = np.isin(data.users, np.asarray(test_users))
    return data.subset(~test_mask), data.subset(test_mask)
