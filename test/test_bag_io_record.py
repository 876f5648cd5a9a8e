"""`edge-inference record` over real DDS: a publisher in this test, the recorder in a subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from edge_inference.core import bag_io

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_record_writes_a_readable_bag_of_dds_traffic(tmp_path, ros_context, storage):
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from edge_inference.ros.qos import reliable_qos, sensor_qos
    from edge_inference_msgs.msg import VehicleCommand

    marker = f"test-{uuid.uuid4().hex[:8]}"  # other sessions may share the DDS domain
    bag = tmp_path / "rec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_inference.cli", "record", "--out", str(bag), "--storage", storage,
         "--topics", "/vehicle/command", "/camera/image_raw", "--duration", "30"],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = __import__("rclpy").create_node("record_test_pub", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    cmd_pub = node.create_publisher(VehicleCommand, "/vehicle/command", reliable_qos())
    img_pub = node.create_publisher(Image, "/camera/image_raw", sensor_qos())
    try:
        deadline = time.monotonic() + 5.0
        while cmd_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert cmd_pub.get_subscription_count() > 0, "recorder did not subscribe"
        time.sleep(0.3)  # let the best-effort image subscription match too
        sent = []
        for i in range(20):
            msg = VehicleCommand(steering=0.05 * i, throttle=0.2, source=VehicleCommand.SOURCE_MANUAL)
            msg.header.frame_id = marker
            msg.header.stamp = node.get_clock().now().to_msg()
            cmd_pub.publish(msg)
            img = Image(height=2, width=3, encoding="rgb8", step=9, data=bytes(range(18)))
            img.header = msg.header
            img_pub.publish(img)
            sent.append(0.05 * i)
            time.sleep(0.03)
        time.sleep(1.0)  # reliable delivery of the last commands, then Ctrl-C as a user would
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
    assert proc.returncode == 0, out
    mine = [m for m in bag_io.read_bag(bag) if m.msg.header.frame_id == marker]
    commands = [m.msg for m in mine if m.topic == "/vehicle/command"]
    np.testing.assert_allclose([c.steering for c in commands], sent, atol=1e-6)  # reliable: all, in order
    images = [m.msg for m in mine if m.topic == "/camera/image_raw"]
    assert images and bag_io.image_to_rgb(images[0]).shape == (2, 3, 3)
    # The custom type's definition is inside the bag, so other tools can decode it.
    with AnyReader([bag]) as reader:
        conn = next(c for c in reader.connections if c.topic == "/vehicle/command")
        assert "SOURCE_MANUAL" in conn.msgdef.data


def test_record_rejects_unknown_topics(capsys):
    from edge_inference.cli import main

    assert main(["record", "--topics", "/no/such/topic", "--out", "unused"]) == 2
    assert "/no/such/topic" in capsys.readouterr().err
