"""The picamera2 camera source against a fake of Picamera2 that checks the call contract.

picamera2 is not on PyPI (it binds the system libcamera), so this fake stands in for it:
it accepts only the calls, in the order, that the real API takes (Picamera2 manual:
``Picamera2(camera_num)``, ``create_video_configuration(main={"size", "format"})``,
``configure``, ``start``, ``capture_request()`` -> ``make_array("main")`` /
``get_metadata()`` -> ``release()``, ``stop``, ``close``), lays "RGB888" out as
[B, G, R] bytes as the manual says, and reports SensorTimestamp on CLOCK_BOOTTIME.
"""
from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from edge_inference.devices import camera_sources

W, H = 64, 48
AGE_NS = 40_000_000  # the fake's frames were exposed 40 ms before they are read


class FakeRequest:
    def __init__(self, cam: "FakePicamera2"):
        self.cam, self.released = cam, False

    def make_array(self, name: str) -> np.ndarray:
        assert not self.released, "make_array after release()"
        assert name == "main"
        w, h = self.cam.config["main"]["size"]
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 200  # blue in the first byte: "RGB888" is [B, G, R] in memory
        frame[..., 2] = 10
        return frame

    def get_metadata(self) -> dict:
        assert not self.released, "get_metadata after release()"
        return {"SensorTimestamp": time.clock_gettime_ns(time.CLOCK_BOOTTIME) - AGE_NS, "ExposureTime": 10000}

    def release(self) -> None:
        assert not self.released, "request released twice"
        self.released = True
        self.cam.outstanding -= 1


class FakePicamera2:
    instances: list["FakePicamera2"] = []

    def __init__(self, camera_num: int = 0):
        self.camera_num, self.config, self.calls, self.outstanding = camera_num, None, [], 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, lores=None, raw=None, controls=None, **kwargs) -> dict:
        assert set(main) <= {"size", "format"} and main["format"] == "RGB888"
        assert len(main["size"]) == 2
        self.calls.append("create_video_configuration")
        return {"main": dict(main), "controls": dict(controls or {})}

    def configure(self, config: dict) -> None:
        assert "start" not in self.calls, "configure while running"
        self.config = config
        self.calls.append("configure")

    def start(self) -> None:
        assert self.config is not None, "start before configure"
        self.calls.append("start")

    def capture_request(self) -> FakeRequest:
        assert self.calls[-1] in ("start", "capture_request") and "stop" not in self.calls
        assert self.outstanding < 4, "requests are not being released: libcamera would run out of buffers"
        self.outstanding += 1
        self.calls.append("capture_request")
        return FakeRequest(self)

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def fake_picamera2(monkeypatch):
    """The fake installed as the `picamera2` module, so the source's real import path is used."""
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    return FakePicamera2


def test_picamera2_source_follows_the_call_contract_and_returns_rgb(fake_picamera2):
    source = camera_sources.make_source("picamera2:1", W, H, 30.0)
    source.open()
    cam = fake_picamera2.instances[0]
    assert cam.camera_num == 1 and cam.calls == ["create_video_configuration", "configure", "start"]
    assert cam.config["main"] == {"size": (W, H), "format": "RGB888"}
    assert cam.config["controls"]["FrameDurationLimits"] == (33333, 33333)
    for _ in range(10):
        frame = source.read()
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        assert tuple(frame[0, 0]) == (10, 0, 200)  # B and R swapped back: RGB
    assert cam.outstanding == 0  # every request released
    now_boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    assert 0 < now_boot - source.last_capture_ns < AGE_NS + 1_000_000_000
    source.close()
    assert cam.calls[-2:] == ["stop", "close"]


def test_picamera2_missing_or_bad_spec_is_a_source_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails like on a machine without it
    with pytest.raises(camera_sources.SourceError, match="python3-picamera2"):
        camera_sources.make_source("picamera2:0", W, H, 30.0).open()
    with pytest.raises(camera_sources.SourceError, match="camera index"):
        camera_sources.make_source("picamera2:/dev/video0", W, H, 30.0)


def test_capture_time_maps_onto_the_ros_clock():
    # exposed 40 ms before now on its clock -> 40 ms before now on the ROS clock (sim time included)
    assert camera_sources.capture_time_on_ros_clock(1_000, 40_001_000, 5_000_000_000) == 4_960_000_000
    assert camera_sources.capture_time_on_ros_clock(2_000, 1_000, 7) == 7  # skew: never after now


def test_camera_node_stamps_images_with_the_sensor_exposure_time(ros_context, fake_picamera2):
    from dds_harness import NodeHarness
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from edge_inference.ros.nodes.camera_node import CameraNode
    from edge_inference.ros.qos import sensor_qos
    from edge_inference.ros.stamps import stamp_to_ns
    node = CameraNode(context=ros_context, parameter_overrides=[
        Parameter("camera_source", value="picamera2:0"), Parameter("width", value=W),
        Parameter("height", value=H), Parameter("fps", value=20.0)])
    h = NodeHarness(ros_context, node, "picam_probe")
    got = []
    h.probe.create_subscription(Image, "camera/image_raw",
                                lambda m: got.append((m, h.probe.get_clock().now().nanoseconds)), sensor_qos())
    h.start()
    try:
        assert h.wait_for(lambda: len(got) >= 5, 10.0), len(got)
        for msg, received_ns in got:
            age_ms = (received_ns - stamp_to_ns(msg.header.stamp)) / 1e6
            assert age_ms >= AGE_NS / 1e6 - 1.0, age_ms  # stamped at exposure, not at read
            assert msg.encoding == "rgb8" and msg.data[0] == 10 and msg.data[2] == 200
    finally:
        h.close()
