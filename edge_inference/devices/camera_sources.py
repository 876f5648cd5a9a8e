"""Frame sources for the camera node: V4L2, GStreamer, video file, Picamera2, synthetic scene.

Every source yields (H, W, 3) uint8 RGB frames at the configured size, or None
when a frame could not be read (the node then reopens with backoff). Sources
are chosen by name through ``SOURCES``; other modules (the simulator) register
their own with ``register_source``. A source that knows when its frame was
exposed sets ``last_capture_ns`` and ``capture_clock`` (the clock of that time);
the node then stamps the image with the capture time instead of the read time.

Which source for which camera: a USB (UVC) webcam is ``v4l2:/dev/videoN``; a
Raspberry Pi CSI camera (Camera Module 2/3, HQ) on a Pi 5 is ``picamera2:N``: it is
only reachable through libcamera, which PyPI's OpenCV (no GStreamer, V4L2 only)
cannot use.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import cv2
import numpy as np

from edge_inference.core.errors import EdgeInferenceError


class FrameSource(Protocol):
    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


class SourceError(EdgeInferenceError, RuntimeError):
    """The capture device/file/pipeline cannot be opened."""


def _resize(frame_rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame_rgb.shape[1] != width or frame_rgb.shape[0] != height:
        frame_rgb = cv2.resize(frame_rgb, (width, height), interpolation=cv2.INTER_AREA)
    return frame_rgb


class OpenCVSource:
    """cv2.VideoCapture over a V4L2 device, a GStreamer pipeline or a video file."""

    def __init__(self, kind: str, spec: str, width: int, height: int, fps: float, loop: bool = True):
        self.kind, self.spec, self.width, self.height, self.fps, self.loop = kind, spec, width, height, fps, loop
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if self.kind == "v4l2":
            dev = int(self.spec) if self.spec.isdigit() else self.spec
            cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
            if cap.isOpened():
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
                cap.set(cv2.CAP_PROP_FPS, self.fps)
        elif self.kind == "gstreamer":
            cap = cv2.VideoCapture(self.spec, cv2.CAP_GSTREAMER)
        else:
            cap = cv2.VideoCapture(self.spec)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.kind} source {self.spec!r}")
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, bgr = self._cap.read()
        if not ok and self.kind == "file" and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        return _resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.width, self.height)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Picamera2Source:
    """A Raspberry Pi CSI camera through libcamera's Python binding (``python3-picamera2``).

    One request per frame: ``capture_request()`` -> the main stream as an array and the
    request's metadata -> ``release()`` (an unreleased request starves libcamera's buffer
    queue). The stream is "RGB888", which Picamera2 lays out in memory as [B, G, R]
    (see its manual's format table), so the channels are swapped here. ``SensorTimestamp``
    (the exposure of the first row, CLOCK_BOOTTIME ns) becomes ``last_capture_ns``.
    """

    capture_clock = time.CLOCK_BOOTTIME  # the clock SensorTimestamp counts on (libcamera's control docs)

    def __init__(self, spec: str, width: int, height: int, fps: float, camera_class=None):
        spec = spec.strip()
        if spec and not spec.isdigit():
            raise SourceError(f"picamera2 source expects a camera index (picamera2:0), got {spec!r}")
        self.index, self.width, self.height, self.fps = int(spec or 0), width, height, fps
        self._camera_class = camera_class
        self._cam = None
        self.last_capture_ns: int | None = None

    def open(self) -> None:
        camera_class = self._camera_class
        if camera_class is None:
            try:
                from picamera2 import Picamera2 as camera_class
            except ImportError as err:
                raise SourceError(f"picamera2 source needs python3-picamera2 (sudo apt install "
                                  f"python3-picamera2): {err}") from err
        frame_us = int(round(1e6 / self.fps))
        cam = None
        try:
            cam = camera_class(self.index)
            config = cam.create_video_configuration(main={"size": (self.width, self.height), "format": "RGB888"},
                                                    controls={"FrameDurationLimits": (frame_us, frame_us)})
            cam.configure(config)
            cam.start()
        except (RuntimeError, IndexError, OSError, ValueError) as err:  # no such camera, busy, bad mode
            if cam is not None:
                cam.close()
            raise SourceError(f"cannot open picamera2 camera {self.index}: {err}") from err
        self._cam = cam

    def read(self) -> np.ndarray | None:
        if self._cam is None:
            return None
        try:
            request = self._cam.capture_request()
        except (RuntimeError, OSError):
            return None
        try:
            bgr = request.make_array("main")  # (H, W, 3), [B, G, R] bytes for "RGB888"
            metadata = request.get_metadata()
        finally:
            request.release()
        stamp = metadata.get("SensorTimestamp")
        self.last_capture_ns = int(stamp) if stamp else None
        rgb = np.ascontiguousarray(bgr[..., 2::-1])
        return _resize(rgb, self.width, self.height)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()


def capture_time_on_ros_clock(capture_ns: int, capture_clock_now_ns: int, ros_now_ns: int) -> int:
    """A capture time on a device clock -> the same instant on the ROS clock.

    The frame's age on its own clock (now - capture) is subtracted from the ROS clock's
    now, both read together, so the stamp is the exposure time whatever the ROS clock
    (system time or /clock); a capture "in the future" (clock skew) counts as age 0.
    """
    return ros_now_ns - max(0, capture_clock_now_ns - capture_ns)


class SyntheticSource:
    """A procedural road scene with a gently curving lane, for tests without a camera."""

    def __init__(self, width: int, height: int, fps: float):
        self.width, self.height, self.fps = width, height, fps
        self._t = 0

    def open(self) -> None:
        self._t = 0

    def read(self) -> np.ndarray:
        h, w = self.height, self.width
        img = np.empty((h, w, 3), np.uint8)
        horizon = h // 3
        img[:horizon] = (150, 190, 230)  # sky
        img[horizon:] = (70, 110, 60)    # grass
        phase = 0.25 * math.sin(2 * math.pi * self._t / (self.fps * 6.0))
        rows = np.arange(horizon, h)
        depth = (rows - horizon + 1) / (h - horizon)       # 0 far .. 1 near
        center = w / 2 + phase * w * (1 - depth) ** 2
        half = (0.08 + 0.42 * depth) * w
        cols = np.arange(w)[None, :]
        road = np.abs(cols - center[:, None]) < half[:, None]
        img[horizon:][road] = (90, 90, 95)
        line = np.abs(np.abs(cols - center[:, None]) - half[:, None] * 0.92) < (1 + 3 * depth[:, None])
        img[horizon:][line] = (240, 240, 240)
        self._t += 1
        return img

    def close(self) -> None:
        pass


SOURCES: dict[str, Callable[..., FrameSource]] = {
    "v4l2": lambda spec, w, h, fps: OpenCVSource("v4l2", spec, w, h, fps),
    "gstreamer": lambda spec, w, h, fps: OpenCVSource("gstreamer", spec, w, h, fps),
    "file": lambda spec, w, h, fps: OpenCVSource("file", spec, w, h, fps),
    "picamera2": lambda spec, w, h, fps: Picamera2Source(spec, w, h, fps),
    "synthetic": lambda spec, w, h, fps: SyntheticSource(w, h, fps),
    # the simulator's forward view, rendered from sim/pose (needs node=...); imported lazily
    "sim": lambda spec, w, h, fps, **kw: __import__("edge_inference.sim.camera_source", fromlist=["x"])
    .make_sim_source(spec, w, h, fps, **kw),
}


def register_source(name: str, factory: Callable[..., FrameSource]) -> None:
    SOURCES[name] = factory


def parse_source(source: str) -> tuple[str, str]:
    """'v4l2:/dev/video0', 'v4l2:0', 'gstreamer:<pipeline>', 'file:<path>', 'picamera2:0', 'synthetic', 'sim'.

    A bare digit means a V4L2 index, a bare path a file.
    """
    source = source.strip()
    if not source:
        raise SourceError("camera_source is empty")
    kind, sep, spec = source.partition(":")
    if sep and kind in SOURCES:
        return kind, spec
    if source in SOURCES:
        return source, ""
    if source.isdigit() or source.startswith("/dev/video"):
        return "v4l2", source
    if "!" in source:
        return "gstreamer", source
    return "file", source


def make_source(source: str, width: int, height: int, fps: float, **kwargs) -> FrameSource:
    kind, spec = parse_source(source)
    if kind not in SOURCES:
        raise SourceError(f"unknown camera source kind {kind!r}; known: {sorted(SOURCES)}")
    return SOURCES[kind](spec, width, height, fps, **kwargs)


@dataclass
class Backoff:
    """Exponential reopen backoff: initial_s, doubling up to max_s; reset on success."""

    initial_s: float = 0.5
    max_s: float = 8.0
    _next_s: float = 0.0

    def __post_init__(self):
        self._next_s = self.initial_s

    def next_delay(self) -> float:
        d = self._next_s
        self._next_s = min(self._next_s * 2.0, self.max_s)
        return d

    def reset(self) -> None:
        self._next_s = self.initial_s
