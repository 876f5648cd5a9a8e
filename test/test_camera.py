"""Camera sources and camera_node over real DDS (a video file stands in for the camera)."""
import shutil

import cv2
import numpy as np
import pytest
from conftest import spin_until
from rclpy.parameter import Parameter

from edge_inference.devices.camera_sources import Backoff, SourceError, make_source, parse_source


def write_video(path, n=10, w=64, h=48):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert vw.isOpened()
    for i in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, :, 2] = 200  # red in BGR
        frame[:, : (i + 1) * w // n, 1] = 255
        vw.write(frame)
    vw.release()


def test_parse_source_forms():
    assert parse_source("v4l2:/dev/video2") == ("v4l2", "/dev/video2")
    assert parse_source("0") == ("v4l2", "0")
    assert parse_source("/dev/video0") == ("v4l2", "/dev/video0")
    assert parse_source("v4l2src ! videoconvert ! appsink") [0] == "gstreamer"
    assert parse_source("synthetic") == ("synthetic", "")
    assert parse_source("drive.avi") == ("file", "drive.avi")
    with pytest.raises(SourceError):
        parse_source("  ")


def test_file_source_reads_rgb_resized_and_loops(tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, n=3)
    src = make_source(f"file:{video}", 32, 24, 10.0)
    src.open()
    frames = [src.read() for _ in range(7)]  # loops past the end
    src.close()
    assert all(f is not None and f.shape == (24, 32, 3) and f.dtype == np.uint8 for f in frames)
    assert frames[0][..., 0].mean() > 150 and frames[0][..., 2].mean() < 60  # BGR red -> RGB red


def test_missing_device_raises_clear_error(tmp_path):
    src = make_source(f"file:{tmp_path / 'nope.avi'}", 32, 24, 10.0)
    with pytest.raises(SourceError, match="nope.avi"):
        src.open()


def test_synthetic_scene_has_road_centered_and_moves():
    src = make_source("synthetic", 160, 90, 30.0)
    src.open()
    a = src.read()
    for _ in range(40):
        b = src.read()
    bottom = a[-1].astype(int)
    road = np.where(np.abs(bottom - [90, 90, 95]).sum(axis=1) < 5)[0]
    assert abs((road.min() + road.max()) / 2 - 80) < 4
    assert not np.array_equal(a, b)


def test_backoff_doubles_and_resets():
    b = Backoff(0.5, 3.0)
    assert [b.next_delay() for _ in range(4)] == [0.5, 1.0, 2.0, 3.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_camera_node_publishes_and_recovers_unplugged_device(ros_context, tmp_path):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from edge_inference.ros.nodes.camera_node import CameraNode
    from edge_inference.ros.qos import sensor_qos
    video = tmp_path / "cam.avi"  # absent at start: an unplugged camera
    node = CameraNode(context=ros_context, parameter_overrides=[
        Parameter("camera_source", value=f"file:{video}"), Parameter("width", value=40),
        Parameter("height", value=30), Parameter("fps", value=30.0),
        Parameter("reopen_initial_s", value=0.05), Parameter("reopen_max_s", value=0.2)])
    probe = Node("probe", context=ros_context)
    images, infos = [], []
    probe.create_subscription(Image, "camera/image_raw", images.append, sensor_qos())
    probe.create_subscription(CameraInfo, "camera/camera_info", infos.append, sensor_qos())
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        assert spin_until(ex, lambda: node.reopens >= 2, 5.0)
        stat = [s for s in node.diag.collect() if s.name.endswith("device")][0]
        assert stat.level == 2 and "cam.avi" in stat.message
        assert not images
        write_video(tmp_path / "tmp.avi")
        shutil.move(tmp_path / "tmp.avi", video)  # plugged back in
        assert spin_until(ex, lambda: len(images) >= 3 and infos, 10.0)
        img = images[-1]
        assert (img.width, img.height, img.encoding) == (40, 30, "rgb8")
        assert infos[-1].k[0] > 0 and (infos[-1].width, infos[-1].height) == (40, 30)
        stamps = [i.header.stamp.sec * 1e9 + i.header.stamp.nanosec for i in images]
        assert stamps == sorted(stamps)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
