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
import sys
import time
from pathlib import Path

from edge_inference.commands.arg_types import positive_float
from edge_inference.core.errors import UsageError
from edge_inference.core.files import mark_partial
from edge_inference.ros.recorder import DEFAULT_TOPICS, BagRecorder, default_bag_path, ros_message_class


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("record", help="record the rover topics to a rosbag2 (MCAP/sqlite3)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="new bag folder (default: bags/rover_<date>_<time>)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--topics", nargs="+", default=list(DEFAULT_TOPICS), help="absolute topic names")
    p.add_argument("--duration", type=positive_float, default=None, help="s; stop after this long (default: Ctrl-C)")
    p.add_argument("--compress", action="store_true", help="zstd (MCAP chunks / sqlite3 messages)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from edge_inference.core.bag_io import TOPIC_TYPES, BagWriter

    unknown = [t for t in args.topics if t not in TOPIC_TYPES]
    if unknown:
        raise UsageError(f"no known message type for {unknown}; known topics: {sorted(TOPIC_TYPES)}")
    topics = {t: TOPIC_TYPES[t] for t in args.topics}
    out = args.out or default_bag_path()
    for msgtype in set(topics.values()):
        ros_message_class(msgtype)
    writer = BagWriter(out, storage=args.storage, compress=args.compress)  # refuses an existing path
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
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
    except Exception:
        partial = mark_partial(out)  # keep what was recorded, but not under the name of a finished bag
        if partial is not None:
            print(f"record: stopped by the error below; the messages recorded until then are in {partial}",
                  file=sys.stderr)
        raise
    counts = ", ".join(f"{t} {n}" for t, n in sorted(writer.counts.items())) or "no messages"
    print(f"{out}: {recorder.received} messages ({counts})")
    return 0
