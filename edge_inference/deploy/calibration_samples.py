"""Real model inputs for calibration and verification, from datasets or rosbags.

Each builder returns {model input name: (N, ...) float32} (plus ``labels`` when the
source has them), shaped by the model's own metadata, so ``quantize``, ``export``,
``hailo-compile`` and ``hailo-verify`` share one sample format (also saved as .npz).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_inference.core.files import InputFileError


def fsq_hapt_samples(root: str | Path, metadata: dict[str, Any], users: list[int] | None,
                     limit: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """HAPT windows of ``users`` -> {"imu": (N, C, H, T), "labels": (N,)} for an FSQ model.

    The windows the behavior node cuts from the whole recordings (stride 25, as
    ``eval`` streams them), transitions included; ``labels`` follow
    ``evaluation/window_labels.window_label`` (negative = not scored for accuracy).
    """
    from edge_inference.datasets.hapt import load_hapt_streamed
    from edge_inference.models.fsq.configuration_fsq import FSQConfig
    from edge_inference.models.fsq.features import normalize, unnormalized_features

    config = FSQConfig.from_dict(metadata["config"])
    data = load_hapt_streamed(root, config.window_length, 25, config.class_names, users)
    if limit is not None and limit < len(data):
        data = data.subset(np.sort(np.random.default_rng(seed).permutation(len(data))[:limit]))
    feats = unnormalized_features(data.windows, config.feature_layout, config.sample_rate_hz,
                                  config.gravity_cutoff_hz, config.rows)
    inputs = normalize(feats, np.asarray(config.feature_mean), np.asarray(config.feature_std))
    return {"imu": inputs, "labels": data.labels}


def _act_image(rgb: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    from edge_inference.core.preprocess import preprocess_image

    h, w = metadata["image_size"]
    return preprocess_image(rgb, w, h, metadata.get("image_fit", "resize"))


def act_donkey_samples(tubs: list[str | Path], metadata: dict[str, Any], limit: int = 200) -> dict[str, np.ndarray]:
    """Donkey Car tub records -> {"image": (N, 3, H, W), "state": (N, 2)}, evenly spread over the drive.

    The state is the previous record's (angle, throttle): what the car applied when the
    frame was taken.
    """
    from edge_inference.datasets.donkey_tub import ImportSummary, load_rgb, read_tub

    records = [r for tub in tubs for r in read_tub(Path(tub), ImportSummary())]
    if len(records) < 2:
        raise InputFileError(f"tubs {tubs} hold fewer than 2 usable records")
    pick = np.unique(np.linspace(1, len(records) - 1, num=min(limit, len(records) - 1)).astype(int))
    images = np.stack([_act_image(load_rgb(records[i].image_path), metadata) for i in pick])
    state = np.asarray([[records[i - 1].angle, records[i - 1].throttle] for i in pick], dtype=np.float32)
    return {"image": images, "state": state[:, :metadata["state_dim"]]}


def act_bag_samples(bag: str | Path, metadata: dict[str, Any], limit: int = 200,
                    image_topic: str = "camera/image_raw",
                    state_topics: tuple[str, ...] = ("vehicle/state", "vehicle/command")) -> dict[str, np.ndarray]:
    """rosbag2 camera frames + the latest [steering, throttle] before each -> ACT inputs.

    The state is the applied ``vehicle/state`` when the bag has it, else the
    ``vehicle/command`` (bags imported from Donkey tubs have only commands).
    """
    from edge_inference.core.bag_io import image_to_rgb, read_bag

    def bare(topic: str) -> str:
        return topic.lstrip("/")

    wanted = [bare(image_topic), *map(bare, state_topics)]
    latest: dict[str, list[float]] = {}
    frames = []  # (rgb, {state topic: [steering, throttle]})
    for item in read_bag(bag, topics=wanted + ["/" + t for t in wanted]):
        topic = bare(item.topic)
        if topic == bare(image_topic):
            frames.append((image_to_rgb(item.msg), dict(latest)))
        else:
            latest[topic] = [float(item.msg.steering), float(item.msg.throttle)]
    source = next((bare(t) for t in state_topics if any(bare(t) in f[1] for f in frames)), None)
    frames = [(rgb, states[source]) for rgb, states in frames if source in states]
    if not frames:
        raise InputFileError(f"bag {bag} has no {image_topic} frames after a message on {list(state_topics)}")
    pick = np.unique(np.linspace(0, len(frames) - 1, num=min(limit, len(frames))).astype(int))
    return {"image": np.stack([_act_image(frames[i][0], metadata) for i in pick]),
            "state": np.asarray([frames[i][1] for i in pick], dtype=np.float32)[:, :metadata["state_dim"]]}
