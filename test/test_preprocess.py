"""Image preprocessing for the policy: resize/crop to the model size, uint8 HWC -> float32 CHW [0, 1]."""
from __future__ import annotations

import numpy as np
import pytest

from edge_inference.core.preprocess import ImagePreprocessor, PreprocessConfig, center_crop_to_aspect, preprocess_image


def gradient_image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), np.full_like(x, 128)], axis=2).astype(np.uint8)


def test_same_size_is_an_exact_chw_scaling():
    rgb = np.random.default_rng(0).integers(0, 256, size=(360, 640, 3), dtype=np.uint8)
    out = preprocess_image(rgb, 640, 360)
    assert out.shape == (3, 360, 640) and out.dtype == np.float32
    np.testing.assert_allclose(out, rgb.transpose(2, 0, 1) / 255.0, atol=1e-7)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_resize_keeps_channel_order_and_layout():
    rgb = gradient_image(720, 1280)
    out = preprocess_image(rgb, 640, 360)
    assert out.shape == (3, 360, 640)
    assert out[0, 10, 0] < 0.01 and out[0, 10, -1] > 0.99  # R grows to the right
    assert out[1, 0, 10] < 0.01 and out[1, -1, 10] > 0.99  # G grows downward
    np.testing.assert_allclose(out[2], 128 / 255, atol=1e-6)


def test_upscaling_small_camera_frames():
    out = preprocess_image(gradient_image(180, 320), 640, 360)
    assert out.shape == (3, 360, 640)


def test_crop_keeps_the_centre_at_the_model_aspect():
    rgb = np.zeros((480, 640, 3), np.uint8)  # 4:3 camera, 16:9 model
    rgb[:60] = 255  # top and bottom bands are cropped away
    rgb[-60:] = 255
    view = center_crop_to_aspect(rgb, 640, 360)
    assert view.shape == (360, 640, 3)
    out = preprocess_image(rgb, 640, 360, fit="crop")
    assert out.max() == 0.0
    stretched = preprocess_image(rgb, 640, 360, fit="resize")
    assert stretched.max() == 1.0


def test_preprocessor_reuses_its_buffer():
    pre = ImagePreprocessor(PreprocessConfig(64, 36))
    a = pre(gradient_image(72, 128))
    b = pre(np.zeros((72, 128, 3), np.uint8))
    assert a is b and b.max() == 0.0


@pytest.mark.parametrize("bad,match", [
    (np.zeros((10, 10), np.uint8), "RGB"),
    (np.zeros((10, 10, 4), np.uint8), "RGB"),
    (np.zeros((10, 10, 3), np.float32), "uint8"),
])
def test_bad_images_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        ImagePreprocessor(PreprocessConfig(8, 8))(bad)


def test_bad_preprocess_config_is_rejected():
    with pytest.raises(ValueError, match="fit"):
        PreprocessConfig(fit="pad")
    with pytest.raises(ValueError, match="positive"):
        PreprocessConfig(width=0)
