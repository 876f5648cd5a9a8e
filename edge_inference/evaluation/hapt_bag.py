"""One UCI HAPT experiment as a rosbag2 drive-alike: IMU at 50 Hz plus label segments.

Why: the behavior classifier is trained on HAPT windows; streaming a held-out
user's whole recording through the behavior node's windower and smoother, with
the annotations as a `/behavior/label` topic, scores it the way the robot runs it
(windows straddling activity changes included), with the same `eval` command as
a recorded drive. Postural transitions are published as class_id -1 with their
HAPT name (e.g. STAND_TO_SIT), unannotated stretches as class_id -1 with no name;
`eval` labels each window by `evaluation/window_labels.window_label` and scores
only windows that a model class covers at least half of (the rest are counted).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_inference.core.files import InputFileError

T0_NS = 1_600_000_000_000_000_000  # arbitrary epoch for the synthetic stamps
SAMPLE_NS = 20_000_000  # 50 Hz
IMU_TOPIC = "/imu/data_raw"
LABEL_TOPIC = "/behavior/label"


def write_hapt_bag(root: str | Path, experiment: int, user: int, out: str | Path,
                   class_names: list[str], storage: str = "mcap", max_samples: int | None = None) -> dict:
    """Write the experiment's IMU (m/s², rad/s) and label segments; return counts."""
    from edge_inference.core import bag_io
    from edge_inference.datasets.hapt import _read_recording, read_activity_labels, recording_sample_labels
    from edge_inference.evaluation.window_labels import TRANSITION

    root = Path(root)
    signal = _read_recording(root / "RawData", experiment, user)[:, :6]  # (T, 6) accel m/s², gyro rad/s
    if max_samples:
        signal = signal[:max_samples]
    names = read_activity_labels(root)
    segments = np.loadtxt(root / "RawData" / "labels.txt", dtype=np.int64, ndmin=2)
    segments = segments[(segments[:, 0] == experiment) & (segments[:, 1] == user)]
    if segments.size == 0:
        raise InputFileError(f"HAPT has no experiment {experiment} of user {user} ({root})")
    # label per sample: class index, TRANSITION or UNLABELLED (evaluation/window_labels.py)
    labels = recording_sample_labels(segments, signal.shape[0], names, class_names)
    activity = np.zeros(signal.shape[0], dtype=np.int64)  # HAPT activity id per sample, 0 = none
    for _, _, act, start, end in segments:
        activity[start - 1:min(end, signal.shape[0])] = act
    store = bag_io.make_typestore()
    imu_cls = store.types["sensor_msgs/msg/Imu"]
    vec = store.types["geometry_msgs/msg/Vector3"]
    quat = store.types["geometry_msgs/msg/Quaternion"]
    label_cls = store.types["edge_inference_msgs/msg/BehaviorState"]
    no_orientation = np.array([-1.0] + [0.0] * 8)  # REP 145: orientation unknown
    zeros9 = np.zeros(9)
    changes = 0
    with bag_io.BagWriter(out, storage=storage, store=store) as writer:
        for i in range(signal.shape[0]):
            t = T0_NS + i * SAMPLE_NS
            if i == 0 or activity[i] != activity[i - 1]:
                c = int(labels[i])
                # a transition: class_id -1 with its HAPT name; unannotated: class_id -1, no name
                name = class_names[c] if c >= 0 else (names[int(activity[i])] if activity[i] else "")
                writer.write(LABEL_TOPIC, label_cls(
                    header=bag_io.make_header(t, "imu", store), class_id=max(c, -1), label=name,
                    confidence=1.0, probabilities=np.zeros(0, np.float32), class_names=list(class_names),
                    fsq_code=-1, latency_ms=0.0), t)
                changes += 1
            a = signal[i]
            writer.write(IMU_TOPIC, imu_cls(
                header=bag_io.make_header(t, "imu", store), orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0),
                orientation_covariance=no_orientation, angular_velocity=vec(x=a[3], y=a[4], z=a[5]),
                angular_velocity_covariance=zeros9, linear_acceleration=vec(x=a[0], y=a[1], z=a[2]),
                linear_acceleration_covariance=zeros9), t)
    return {"imu_samples": int(signal.shape[0]), "label_changes": changes,
            "labelled_samples": int((labels >= 0).sum()), "transition_samples": int((labels == TRANSITION).sum())}
