"""Camera frame -> policy input tensor: resize/crop to the model size, uint8 HWC -> float32 CHW [0, 1].

LeRobot feeds ACT images as float32 CHW in [0, 1] (normalization to mean/std
happens inside the model's preprocessor). This runs on every frame of a 30 Hz
loop on a Pi 5, so it avoids temporaries: one cv2 resize (INTER_AREA when
shrinking: no aliasing), then a single fused transpose + scale into a
preallocated output buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

FIT_MODES = ("resize", "crop")


@dataclass
class PreprocessConfig:
    width: int = field(default=640, metadata={"description": "model input width, px"})
    height: int = field(default=360, metadata={"description": "model input height, px"})
    fit: str = field(
        default="resize",
        metadata={"description": "resize: stretch to the size; crop: centre-crop to the aspect, then resize",
                  "choices": FIT_MODES},
    )

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"model input size must be positive, got {self.width}x{self.height}")
        if self.fit not in FIT_MODES:
            raise ValueError(f"unknown fit mode {self.fit!r}; expected one of {FIT_MODES}")


def center_crop_to_aspect(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Largest centred view of ``rgb`` with the aspect ratio width:height (a view, no copy)."""
    h, w = rgb.shape[:2]
    if w * height > h * width:  # too wide
        new_w = max(1, round(h * width / height))
        x0 = (w - new_w) // 2
        return rgb[:, x0: x0 + new_w]
    new_h = max(1, round(w * height / width))
    y0 = (h - new_h) // 2
    return rgb[y0: y0 + new_h]


class ImagePreprocessor:
    """Reusable converter; ``__call__`` returns a (3, height, width) float32 array.

    The returned array is a buffer owned by this object and overwritten on the
    next call: copy it if you keep it across frames.
    """

    def __init__(self, config: PreprocessConfig):
        self.config = config
        self._out = np.empty((3, config.height, config.width), dtype=np.float32)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
        if rgb.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {rgb.dtype}")
        cfg = self.config
        if cfg.fit == "crop":
            rgb = center_crop_to_aspect(rgb, cfg.width, cfg.height)
        h, w = rgb.shape[:2]
        if (w, h) != (cfg.width, cfg.height):
            shrinking = w > cfg.width or h > cfg.height
            rgb = cv2.resize(rgb, (cfg.width, cfg.height),
                             interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=self._out, casting="unsafe")
        return self._out


def preprocess_image(rgb: np.ndarray, width: int, height: int, fit: str = "resize") -> np.ndarray:
    """One-off version of ``ImagePreprocessor`` returning a fresh (3, height, width) float32 array."""
    return ImagePreprocessor(PreprocessConfig(width, height, fit))(rgb).copy()
