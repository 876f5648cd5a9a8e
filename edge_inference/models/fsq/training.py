"""Train and evaluate the FSQ classifier on labelled raw IMU windows (torch, CPU/GPU).

The functional core of ``edge-inference train-fsq``: features come from
``features.py`` (the same code the robot runs), normalization statistics are taken
from the training users only and stored in the config.

Augmentation (training only) acts on the unnormalized features, which are linear in
the raw window: rotating the raw accelerometer and gyroscope by R rotates each xyz
triple of the features (body_acc, gyro, total_acc and their differences) by the same
R, because the gravity low-pass and the first difference act along time only. So a
random rotation of the device (how it sits on the body / car) and a per-window gain
are applied to the cached features instead of recomputing them. Windows whose label
is negative (transition, unlabelled, mixed: ``evaluation/window_labels.py``) are not
trained on.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from edge_inference.datasets.hapt import WindowSet
from edge_inference.evaluation.metrics import classification_metrics, code_usage
from edge_inference.models.fsq.codes import levels_to_index
from edge_inference.models.fsq.configuration_fsq import FSQConfig
from edge_inference.models.fsq.features import normalize, unnormalized_features
from edge_inference.models.fsq.modeling_fsq import FSQClassifier


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    #: Per-window random amplitude scaling (+/- fraction) against user-to-user variation.
    scale_jitter: float = 0.1
    noise_std: float = 0.02  # in normalized units
    #: Random rotation of accel + gyro jointly (uniform random axis, angle uniform in
    #: +/- this many degrees; 180 = any orientation). 0 = off.
    rotation_deg: float = 0.0
    #: Random rotation about the device x axis (the body's vertical axis for a waist-worn
    #: phone: which way the device faces around the waist, or worn upside-down in y/z),
    #: angle uniform in +/- this many degrees (360: either 0 or 180 degrees, a flipped clip);
    #: applied before ``rotation_deg``. 0 = off.
    x_rotation_deg: float = 0.0
    seed: int = 0
    threads: int = 1


def random_rotations(n: int, max_deg: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 3, 3) rotation matrices: uniform random axis, angle uniform in [-max_deg, max_deg]."""
    axis = torch.randn(n, 3, generator=generator)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)
    angle = (2 * torch.rand(n, generator=generator) - 1) * math.radians(max_deg)
    kx = torch.zeros(n, 3, 3)  # cross-product matrix of the axis
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    kx = kx - kx.transpose(1, 2)
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3) + s * kx + (1 - c) * kx @ kx  # Rodrigues


def rotate_features(features: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """(B, 9, H, T) unnormalized features, each of the 3 xyz triples rotated by (B, 3, 3)."""
    b, c, h, t = features.shape
    triples = features.reshape(b, c // 3, 3, h * t)  # (B, 3 groups, xyz, H*T)
    return torch.einsum("bij,bgjk->bgik", rotations, triples).reshape(b, c, h, t)


def augment(features: torch.Tensor, train_config: TrainConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training augmentation of unnormalized features (B, C, H, T): rotation, then a per-window gain."""
    if train_config.x_rotation_deg > 0 and features.shape[1] % 3 == 0:
        if train_config.x_rotation_deg >= 360:  # 360 = only the two ways a phone clips on: 0 or 180 degrees
            angle = math.pi * torch.randint(0, 2, (len(features),), generator=generator).float()
        else:
            angle = (2 * torch.rand(len(features), generator=generator) - 1) * math.radians(train_config.x_rotation_deg)
        c, s = torch.cos(angle), torch.sin(angle)
        rx = torch.zeros(len(features), 3, 3)
        rx[:, 0, 0], rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = 1.0, c, -s, s, c
        features = rotate_features(features, rx)
    if train_config.rotation_deg > 0 and features.shape[1] % 3 == 0:
        features = rotate_features(features, random_rotations(len(features), train_config.rotation_deg, generator))
    if train_config.scale_jitter > 0:
        scale = 1 + train_config.scale_jitter * (2 * torch.rand(len(features), 1, 1, 1, generator=generator) - 1)
        features = features * scale
    return features


def window_features(data: WindowSet, config: FSQConfig) -> np.ndarray:
    """(N, T, 9) raw windows -> (N, C, H, T) float32 unnormalized features."""
    if data.windows.shape[1] != config.window_length:
        raise ValueError(f"windows have {data.windows.shape[1]} samples, config wants {config.window_length}")
    if not math.isclose(data.sample_rate_hz, config.sample_rate_hz):
        raise ValueError(f"windows are at {data.sample_rate_hz} Hz, config wants {config.sample_rate_hz} Hz")
    return unnormalized_features(data.windows, config.feature_layout, config.sample_rate_hz,
                                 config.gravity_cutoff_hz, config.rows)


def fit_normalization(features: np.ndarray, config: FSQConfig) -> FSQConfig:
    """Config with per (channel, row) mean/std of ``features`` (N, C, H, T)."""
    mean = features.mean(axis=(0, 3))
    std = features.std(axis=(0, 3))
    std = np.where(std < 1e-6, 1.0, std)  # constant channels (e.g. absent mag) stay finite
    return dataclasses.replace(config, feature_mean=mean.tolist(), feature_std=std.tolist())


def normalized_inputs(features: np.ndarray, config: FSQConfig) -> np.ndarray:
    return normalize(features, np.asarray(config.feature_mean), np.asarray(config.feature_std))


def train_fsq(train: WindowSet, config: FSQConfig, train_config: TrainConfig,
              log: Callable[[str], None] = print) -> FSQClassifier:
    """Train a fresh classifier on ``train``; ``config`` must already hold normalization."""
    torch.manual_seed(train_config.seed)
    torch.set_num_threads(train_config.threads)
    rng = np.random.default_rng(train_config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    keep = train.labels >= 0  # transition / unlabelled / mixed windows: not trained on
    train = train.subset(keep) if not keep.all() else train
    x = torch.from_numpy(window_features(train, config))  # unnormalized: augmented per batch
    mean = torch.tensor(config.feature_mean, dtype=torch.float32)[None, :, :, None]
    std = torch.tensor(config.feature_std, dtype=torch.float32)[None, :, :, None] + 1e-8
    y = torch.from_numpy(train.labels)
    model = FSQClassifier(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.learning_rate,
                                  weight_decay=train_config.weight_decay)
    steps_per_epoch = math.ceil(len(y) / train_config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=train_config.learning_rate,
                                                    total_steps=train_config.epochs * steps_per_epoch)
    # Class-balanced loss: HAPT users spend different time per activity.
    counts = np.bincount(train.labels, minlength=config.num_classes).astype(np.float64)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / config.num_classes, dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device))
    for epoch in range(train_config.epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(y)))
        started, total, correct, loss_sum = time.monotonic(), 0, 0, 0.0
        for begin in range(0, len(y), train_config.batch_size):
            idx = order[begin:begin + train_config.batch_size]
            xb, yb = augment(x[idx], train_config), y[idx]
            xb = (xb - mean) / std
            xb = xb + train_config.noise_std * torch.randn_like(xb)
            xb, yb = xb.to(device), yb.to(device)
            logits, _ = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            total += len(idx)
        log(f"epoch {epoch + 1}/{train_config.epochs} loss {loss_sum / total:.4f} "
            f"train acc {correct / total:.4f} ({time.monotonic() - started:.1f} s)")
    return model.cpu().eval()


@torch.no_grad()
def predict(model: FSQClassifier, inputs: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, T) normalized inputs -> (probs (N, K), code indices (N,))."""
    model.eval()
    probs, codes = [], []
    for begin in range(0, len(inputs), batch_size):
        logits, level_values = model(torch.from_numpy(inputs[begin:begin + batch_size]))
        probs.append(torch.softmax(logits, -1).numpy())
        codes.append(levels_to_index(level_values.numpy(), model.config.levels))
    return np.concatenate(probs), np.concatenate(codes)


def evaluation_report(probs: np.ndarray, codes: np.ndarray, labels: np.ndarray, config: FSQConfig,
                      basic_classes: list[str] | None = None) -> dict:
    """Accuracy, macro-F1, confusion matrix, code usage; plus the subset of basic classes."""
    report = classification_metrics(labels, probs.argmax(1), config.class_names)
    report["code_usage"] = code_usage(codes, config.codebook_size)
    if basic_classes:
        keep = [config.class_names.index(c) for c in basic_classes if c in config.class_names]
        mask = np.isin(labels, keep)
        if mask.any():
            report["basic_activities_accuracy"] = float((probs[mask].argmax(1) == labels[mask]).mean())
    return report


def smoothed_predictions(probs: np.ndarray, recordings: np.ndarray | None,
                         smoother_config=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) per-window probabilities in stream order -> (class the behavior node publishes (N,),
    its smoothed probability (N,)).

    The node's ``ProbabilitySmoother`` (default: EMA, alpha 0.3) runs over each recording
    separately, as ``eval`` does on one bag per recording.
    """
    from edge_inference.core.imu_window import ProbabilitySmoother, SmootherConfig

    recordings = np.zeros(len(probs), np.int64) if recordings is None else np.asarray(recordings)
    out = np.empty(len(probs), np.int64)
    confidence = np.empty(len(probs), np.float64)
    for rec in np.unique(recordings):
        smoother = ProbabilitySmoother(smoother_config or SmootherConfig())
        for i in np.flatnonzero(recordings == rec):
            out[i], smoothed = smoother.update(probs[i])
            confidence[i] = smoothed[out[i]]
    return out, confidence


#: Confidence thresholds reported for an "uncertain" outcome (smoothed probability below it).
UNCERTAIN_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def uncertain_outcome(pred: np.ndarray, confidence: np.ndarray, labels: np.ndarray,
                      thresholds=UNCERTAIN_THRESHOLDS) -> list[dict]:
    """What an "uncertain" outcome (smoothed confidence < threshold) would do, per threshold.

    ``covered``: fraction of scored windows still given a class; ``accuracy_covered``:
    accuracy on those; ``transitions_flagged``: fraction of transition windows called
    uncertain. Reported only: the node always publishes its argmax class.
    """
    from edge_inference.evaluation.window_labels import TRANSITION

    scored, transition = labels >= 0, labels == TRANSITION
    rows = []
    for tau in thresholds:
        sure = confidence >= tau
        covered = scored & sure
        rows.append({"threshold": tau, "covered": float(covered.sum() / max(scored.sum(), 1)),
                     "accuracy_covered": float((pred[covered] == labels[covered]).mean()) if covered.any() else None,
                     "transitions_flagged": float((~sure[transition]).mean()) if transition.any() else None})
    return rows


def streamed_report(probs: np.ndarray, codes: np.ndarray, data: WindowSet, config: FSQConfig,
                    baseline_class: int | None = None) -> dict:
    """Score streamed windows like ``eval``: smoothed per recording, labels by ``window_label``.

    ``accuracy`` etc. are of the smoothed class (what the node publishes and ``eval``
    scores) on windows with a class label; ``per_window_accuracy`` is the raw model's.
    Windows not scored are counted (``not_scored``). ``baseline_class``: also score a
    constant prediction of that class (e.g. the training set's most frequent one).
    """
    from edge_inference.evaluation.window_labels import excluded_counts

    labels = np.asarray(data.labels)
    pred, confidence = smoothed_predictions(probs, data.recordings)
    scored = labels >= 0
    report = classification_metrics(labels[scored], pred[scored], config.class_names)
    report["per_window_accuracy"] = float((probs.argmax(1)[scored] == labels[scored]).mean())
    report["label_rule"] = "window_labels.window_label: the annotation covering >= 50% of the window"
    report["windows"] = int(len(labels))
    report["not_scored"] = excluded_counts(labels, pred, config.class_names)
    report["code_usage"] = code_usage(codes, config.codebook_size)
    report["uncertain_outcome"] = uncertain_outcome(pred, confidence, labels)
    if baseline_class is not None:
        report["baseline_constant_class"] = {"class": config.class_names[baseline_class],
                                             "accuracy": float((labels[scored] == baseline_class).mean())}
    rows = []
    recordings = data.recordings if data.recordings is not None else np.zeros(len(labels), np.int64)
    for rec in np.unique(recordings):
        m = (recordings == rec) & scored
        row = {"experiment": int(rec), "user": int(data.users[recordings == rec][0]), "scored_windows": int(m.sum()),
               "accuracy": float((pred[m] == labels[m]).mean()) if m.any() else None,
               "per_window_accuracy": float((probs[m].argmax(1) == labels[m]).mean()) if m.any() else None}
        if baseline_class is not None:
            row["baseline_constant_class_accuracy"] = float((labels[m] == baseline_class).mean()) if m.any() else None
        rows.append(row)
    report["per_recording"] = rows
    return report
