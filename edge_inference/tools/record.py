"""`edge-inference record`: write the rover's topics to a rosbag2 (MCAP by default).

Subscribes over DDS with raw (serialized) subscriptions and stores the CDR bytes
as received, stamped with the receive time like `ros2 bag record`, through the
`rosbags` writer. So it runs with only the PyPI ROS wheels (no rosbag2 install)
and `ros2 bag info/play` on the robot reads the result; the message definitions
of our custom types are stored in the bag.

    edge-inference record                        # bags/rover_<date>_<time>, MCAP, until Ctrl-C
    edge-inference record --storage sqlite3 --duration 60 --out bags/lap1

Launch with the rover: `ros2 launch edge_inference rover.launch.py record:=true`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from datetime import datetime
from pathlib import Path

# Camera and IMU come best effort (sensor QoS); the rest reliable, as the nodes publish them.
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
        raise ValueError(f"message type {msgtype} is not importable ({err}); "
                         f"source tools/env.sh or the ROS setup first") from err


def default_bag_path() -> Path:
    return Path("bags") / datetime.now().strftime("rover_%Y%m%d_%H%M%S")


class BagRecorder:
    """Subscriptions on a node that append every received message to a BagWriter."""

    def __init__(self, node, writer, topics: dict[str, str]):
        from edge_inference.qos import reliable_qos, sensor_qos

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


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("record", help="record the rover topics to a rosbag2 (MCAP/sqlite3)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="new bag folder (default: bags/rover_<date>_<time>)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--topics", nargs="+", default=list(DEFAULT_TOPICS), help="absolute topic names")
    p.add_argument("--duration", type=float, default=None, help="s; stop after this long (default: Ctrl-C)")
    p.add_argument("--compress", action="store_true", help="zstd (MCAP chunks / sqlite3 messages)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from edge_inference.bag_io import TOPIC_TYPES, BagError, BagWriter

    unknown = [t for t in args.topics if t not in TOPIC_TYPES]
    if unknown:
        print(f"error: no known message type for {unknown}; known topics: {sorted(TOPIC_TYPES)}", file=sys.stderr)
        return 2
    topics = {t: TOPIC_TYPES[t] for t in args.topics}
    out = args.out or default_bag_path()
    try:
        for msgtype in set(topics.values()):
            ros_message_class(msgtype)
        writer = BagWriter(out, storage=args.storage, compress=args.compress)
    except (ValueError, BagError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    rclpy.init()
    node = rclpy.create_node("bag_recorder")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    with writer:
        recorder = BagRecorder(node, writer, topics)
        print(f"recording {len(topics)} topics to {out} ({args.storage}); Ctrl-C to stop", flush=True)
        end = None if args.duration is None else time.monotonic() + args.duration
        try:
            while rclpy.ok() and (end is None or time.monotonic() < end):
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass  # Ctrl-C / launch shutdown: close the bag properly below
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
    counts = ", ".join(f"{t} {n}" for t, n in sorted(writer.counts.items())) or "no messages"
    print(f"{out}: {recorder.received} messages ({counts})")
    return 0
