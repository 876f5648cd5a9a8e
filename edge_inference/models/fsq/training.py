"""Train and evaluate the FSQ classifier on labelled raw IMU windows (torch, CPU/GPU).

The functional core of ``edge-inference train-fsq``: features come from
``features.py`` (the same code the robot runs), normalization statistics are taken
from the training users only and stored in the config.
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
    seed: int = 0
    threads: int = 1


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
    x = torch.from_numpy(normalized_inputs(window_features(train, config), config))
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
            xb, yb = x[idx], y[idx]
            scale = 1 + train_config.scale_jitter * (2 * torch.rand(len(idx), 1, 1, 1) - 1)
            xb = xb * scale + train_config.noise_std * torch.randn_like(xb)
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
