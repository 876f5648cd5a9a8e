"""`eval --realtime`: the replay, paced like the drive and visible on DDS.

Every bag message is republished on its topic at its recorded pace (scaled by
`rate`), `/clock` carries the bag time so nodes with `use_sim_time:=true`,
rviz and rqt follow it, and the policy's output at each teleop tick appears
on `/eval/vehicle/command` (source=policy) next to the recorded teleop.
Scoring is the same Replayer as --fast; only the pacing and the wall-clock
timings differ. On a ROS machine, `ros2 bag play --clock` against the launched
nodes gives the same picture.
"""

from __future__ import annotations

import time
from typing import Any

from edge_inference.evaluation.replay import ReplayConfig, Replayer, ReplayResult

EVAL_COMMAND_TOPIC = "/eval/vehicle/command"


class DdsMirror:
    """Publishers for the replayed topics, /clock and the policy's commands."""

    def __init__(self, node, topics: dict[str, str]):
        from rosgraph_msgs.msg import Clock

        from edge_inference.ros.qos import reliable_qos, sensor_qos
        from edge_inference.ros.recorder import SENSOR_TOPICS, ros_message_class

        self.node = node
        self.clock_pub = node.create_publisher(Clock, "/clock", reliable_qos())
        self._clock_cls = Clock
        self.publishers = {}
        for topic, msgtype in topics.items():
            try:
                cls = ros_message_class(msgtype)
            except ValueError:
                continue  # not importable here: scored but not republished
            qos = sensor_qos() if topic in SENSOR_TOPICS else reliable_qos()
            self.publishers[topic] = node.create_publisher(cls, topic, qos)
        from edge_inference_msgs.msg import VehicleCommand

        self._command_cls = VehicleCommand
        self.command_pub = node.create_publisher(VehicleCommand, EVAL_COMMAND_TOPIC, reliable_qos())

    def clock(self, ns: int) -> None:
        from edge_inference.ros.stamps import ns_to_stamp

        msg = self._clock_cls()
        msg.clock = ns_to_stamp(ns)
        self.clock_pub.publish(msg)

    def republish(self, topic: str, cdr: bytes) -> None:
        pub = self.publishers.get(topic)
        if pub is not None:
            pub.publish(cdr)

    def command(self, stamp_ns: int, values) -> None:
        from edge_inference.ros.stamps import ns_to_stamp

        msg = self._command_cls()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.header.frame_id = "eval"
        if values is None:
            msg.source = self._command_cls.SOURCE_NEUTRAL
        else:
            msg.steering, msg.throttle = float(values[0]), float(values[1])
            msg.source = self._command_cls.SOURCE_POLICY
        self.command_pub.publish(msg)


def evaluate_bag_realtime(bag: str, config: ReplayConfig, policy: Any = None, behavior: Any = None,
                          run_info: dict | None = None, rate: float = 1.0,
                          wait_for_viewer_s: float = 1.0) -> tuple[dict, ReplayResult]:
    """Replay at the bag's pace (x rate) while mirroring it on DDS; score as evaluate_bag.

    Playback starts once something subscribes to /clock or the policy commands,
    or after `wait_for_viewer_s` (DDS discovery takes a moment; a viewer would
    otherwise miss the start of the drive).
    """
    import rclpy

    from edge_inference.core.bag_io import ReadStats, make_typestore, read_bag
    from edge_inference.evaluation.replay import finish_metrics, resolve_holdout

    if not rate > 0:
        raise ValueError(f"--rate must be > 0, got {rate}")
    config = resolve_holdout(bag, config)
    store = make_typestore()
    stats = ReadStats()
    messages = read_bag(bag, stats=stats)
    first = next(messages, None)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("eval_player", context=context)
    try:
        mirror = DdsMirror(node, stats.topics)
        deadline = time.monotonic() + wait_for_viewer_s
        while time.monotonic() < deadline and not (mirror.command_pub.get_subscription_count()
                                                   or mirror.clock_pub.get_subscription_count()):
            time.sleep(0.02)
        if time.monotonic() < deadline:
            time.sleep(0.2)  # a viewer's other subscriptions match moments after its first
        replayer = Replayer(config, policy, behavior, bag_topics=stats.topics)
        n_ticks = 0
        start_wall = time.monotonic()
        start_bag = None if first is None else first.log_ns
        item = first
        while item is not None:
            delay = start_wall + (item.log_ns - start_bag) / 1e9 / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            mirror.clock(item.log_ns)
            mirror.republish(item.topic, bytes(store.serialize_cdr(item.msg, item.msgtype)))
            replayer.feed(item)
            ticks = replayer.result.tick_pred
            if policy is not None and len(ticks) > n_ticks:
                pred = ticks[-1]
                mirror.command(replayer.result.tick_ns[-1], None if not (pred == pred).all() else pred)
                n_ticks = len(ticks)
            item = next(messages, None)
        result = replayer.finish()
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return finish_metrics(bag, config, stats, result, run_info), result
