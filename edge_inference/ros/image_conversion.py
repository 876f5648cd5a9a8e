"""sensor_msgs/Image <-> numpy RGB.

On the robot ``cv_bridge`` (ros-jazzy-cv-bridge) does the conversion. PyPI's
``cv-bridge`` is an unmaintained ROS 1-era pure-Python copy (wrong 16-bit type
table, ROS 1 message assumptions), so the dev/CI venv does not install it; there
this small, tested converter is used instead. Both paths give the same arrays.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from edge_inference.core.errors import EdgeInferenceError

try:  # the real ROS 2 cv_bridge, when installed
    from cv_bridge import CvBridge as _CvBridge  # type: ignore
    _BRIDGE = _CvBridge()
except ImportError:  # pragma: no cover - depends on the machine
    _BRIDGE = None

# encoding -> (channels, dtype, conversion to RGB)
_ENCODINGS = {
    "rgb8": (3, np.uint8, None),
    "bgr8": (3, np.uint8, "bgr"),
    "rgba8": (4, np.uint8, "rgba"),
    "bgra8": (4, np.uint8, "bgra"),
    "mono8": (1, np.uint8, "mono"),
    "8UC3": (3, np.uint8, None),
}


class UnsupportedEncodingError(EdgeInferenceError, ValueError):
    """The image encoding cannot be turned into an 8-bit RGB frame."""


def using_cv_bridge() -> bool:
    return _BRIDGE is not None


def image_msg_to_rgb(msg: Image) -> np.ndarray:
    """Image -> (H, W, 3) uint8 RGB. Raises UnsupportedEncodingError / ValueError on bad input."""
    spec = _ENCODINGS.get(msg.encoding)
    if spec is None:
        raise UnsupportedEncodingError(
            f"image encoding {msg.encoding!r} is not supported; use one of {sorted(_ENCODINGS)}")
    if _BRIDGE is not None:
        return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    channels, dtype, conv = spec
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = w * channels * np.dtype(dtype).itemsize
    if h <= 0 or w <= 0:
        raise ValueError(f"image has empty size {w}x{h}")
    if step < row_bytes:
        raise ValueError(f"image step {step} < width*channels {row_bytes} for {msg.encoding}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)  # array('B') or bytes: zero-copy
    if buf.size < step * h:
        raise ValueError(f"image data has {buf.size} bytes, expected {step * h} ({w}x{h}, step {step})")
    arr = buf[: step * h].reshape(h, step)[:, :row_bytes].reshape(h, w, channels)
    if conv is None:
        return np.ascontiguousarray(arr)
    if conv == "bgr":
        return np.ascontiguousarray(arr[:, :, ::-1])
    if conv == "rgba":
        return np.ascontiguousarray(arr[:, :, :3])
    if conv == "bgra":
        return np.ascontiguousarray(arr[:, :, 2::-1])
    return np.ascontiguousarray(np.repeat(arr, 3, axis=2))  # mono


def rgb_to_image_msg(rgb: np.ndarray, header=None, encoding: str = "rgb8") -> Image:
    """(H, W, 3) uint8 RGB -> Image in ``rgb8`` or ``bgr8``."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if encoding not in ("rgb8", "bgr8"):
        raise UnsupportedEncodingError(f"output encoding must be rgb8 or bgr8, not {encoding!r}")
    data = rgb if encoding == "rgb8" else rgb[:, :, ::-1]
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding, msg.is_bigendian, msg.step = encoding, 0, int(rgb.shape[1]) * 3
    msg.data = np.ascontiguousarray(data).tobytes()
    return msg
