"""Record rover topics into a rosbag2 (the library behind `edge-inference record`).

Messages are written serialized as they arrive; ROS message classes are found by type name."""
from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path

from edge_inference.core.errors import ToolMissing

SENSOR_TOPICS = {"/camera/image_raw", "/camera/camera_info", "/imu/data_raw", "/imu/mag", "/range"}


DEFAULT_TOPICS = ("/camera/image_raw", "/camera/camera_info", "/imu/data_raw", "/imu/mag", "/vehicle/command",
                  "/vehicle/state", "/policy/action_chunk", "/policy/stats", "/behavior/state",
                  "/behavior/stats")


def ros_message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class (needs that package importable)."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as err:
        raise ToolMissing(f"message type {msgtype} is not importable ({err}); "
                         f"source scripts/env.sh or the ROS setup first") from err


def default_bag_path() -> Path:
    return Path("bags") / datetime.now().strftime("rover_%Y%m%d_%H%M%S")


class BagRecorder:
    """Subscriptions on a node that append every received message to a BagWriter."""

    def __init__(self, node, writer, topics: dict[str, str]):
        from edge_inference.ros.qos import reliable_qos, sensor_qos

        self.node = node
        self.writer = writer
        self.received = 0
        self._subs = []
        for topic, msgtype in topics.items():
            qos = sensor_qos() if topic in SENSOR_TOPICS else reliable_qos()
            self._subs.append(node.create_subscription(
                ros_message_class(msgtype), topic, self._callback(topic, msgtype), qos, raw=True))

    def _callback(self, topic: str, msgtype: str):
        def store(data: bytes) -> None:
            self.writer.write_raw(topic, msgtype, data, self.node.get_clock().now().nanoseconds)
            self.received += 1
        return store
