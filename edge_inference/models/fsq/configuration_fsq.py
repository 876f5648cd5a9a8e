"""FSQ behavior classifier configuration: one dataclass, JSON round-trippable.

The checkpoint's ``config.json`` is this dataclass, so a model file carries its own
class names, input contract and feature normalization (nodes never hard-code them).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

#: Levels whose product is 4800 (Mentzer et al. 2023 recommend ~[8,6,5,5,4] for 2^12..2^13 codes).
DEFAULT_LEVELS = [8, 6, 5, 5, 4]

#: The robot's raw IMU window layout given to ``BehaviorRunner.predict``: (T, 9).
RAW_CHANNELS = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z", "mag_x", "mag_y", "mag_z"]
RAW_UNITS = ["m/s^2"] * 3 + ["rad/s"] * 3 + ["T"] * 3


@dataclass
class FSQConfig:
    """Every hyperparameter of the FSQ classifier, documented where declared."""

    #: Class names in output order; their number sets the head size.
    class_names: list[str] = field(default_factory=lambda: [
        "WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"])
    #: Model input (C, H, W) = (channels, rows, samples); the original contract is (9, 2, 100).
    in_channels: int = 9
    rows: int = 2
    window_length: int = 100
    #: Sample rate the window must be resampled to before inference (Hz).
    sample_rate_hz: float = 50.0
    #: FSQ levels per latent dimension; code book size = prod(levels).
    levels: list[int] = field(default_factory=lambda: list(DEFAULT_LEVELS))
    #: Conv2d widths of the encoder; the first conv spans all rows (kernel (rows, k)).
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    kernel_size: int = 5
    #: Hidden width of the classifier head after the FSQ bottleneck.
    head_hidden: int = 64
    dropout: float = 0.1
    #: How the raw (T, 9) window becomes the (9, rows, T) input: see ``features.py``.
    feature_layout: str = "har9"
    #: Gravity separation low-pass cutoff (Hz) for the ``har9`` layout (UCI HAR: 0.3 Hz).
    gravity_cutoff_hz: float = 0.3
    #: Per (channel, row) normalization, shape (in_channels, rows); filled from training data.
    feature_mean: list[list[float]] = field(default_factory=list)
    feature_std: list[list[float]] = field(default_factory=list)
    #: Free-form provenance (dataset, licence, split, metrics).
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ValueError("FSQConfig.class_names must name at least one class")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"FSQConfig.class_names has duplicates: {self.class_names}")
        if any(int(level) < 2 for level in self.levels):
            raise ValueError(f"FSQ levels must all be >= 2, got {self.levels}")
        if self.rows < 1 or self.window_length < 8 or self.in_channels < 1:
            raise ValueError(
                f"bad input shape (C,H,W)=({self.in_channels},{self.rows},{self.window_length})")
        if not self.conv_channels:
            raise ValueError("FSQConfig.conv_channels must list at least one conv width")
        for name in ("feature_mean", "feature_std"):
            value = getattr(self, name)
            if value and (len(value) != self.in_channels or any(len(r) != self.rows for r in value)):
                raise ValueError(f"FSQConfig.{name} must have shape ({self.in_channels}, {self.rows})")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def codebook_size(self) -> int:
        return math.prod(int(level) for level in self.levels)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(B, C, H, W) with batch 1: the static shape exported to ONNX / HEF."""
        return (1, self.in_channels, self.rows, self.window_length)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"type": "fsq_classifier"}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FSQConfig":
        data = dict(data)
        kind = data.pop("type", "fsq_classifier")
        if kind != "fsq_classifier":
            raise ValueError(f"config type is {kind!r}, expected 'fsq_classifier'")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FSQConfig keys: {unknown}")
        return cls(**data)
