"""`eval --realtime`: paced replay mirrored on real DDS with /clock, scored like --fast."""
from __future__ import annotations

import threading
import time

import pytest
from test_eval import FRAME_NS, T0, IndexPolicy, eval_config, write_eval_bag  # noqa: E402 (sibling test module)

from edge_inference.evaluation.replay import evaluate_bag


def test_realtime_mirrors_on_dds_with_clock_and_scores_like_fast(tmp_path, ros_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock

    from edge_inference.evaluation.realtime import EVAL_COMMAND_TOPIC, evaluate_bag_realtime
    from edge_inference.ros.qos import reliable_qos
    from edge_inference_msgs.msg import VehicleCommand

    bag = tmp_path / "drive"
    write_eval_bag(bag, "mcap")  # 3 s of policy data and 12 s of IMU
    fast, _ = evaluate_bag(str(bag), eval_config(), policy=IndexPolicy())

    node = rclpy.create_node("realtime_watcher", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    clocks, commands = [], []
    node.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec),
                             reliable_qos(depth=100))
    node.create_subscription(VehicleCommand, EVAL_COMMAND_TOPIC, commands.append, reliable_qos(depth=100))
    out = {}

    def play():
        out["result"] = evaluate_bag_realtime(str(bag), eval_config(), policy=IndexPolicy(), rate=8.0,
                                              wait_for_viewer_s=10.0)

    start = time.monotonic()
    worker = threading.Thread(target=play)
    worker.start()
    while worker.is_alive() or time.monotonic() - start < 0.5:
        executor.spin_once(timeout_sec=0.05)
        if not worker.is_alive() and time.monotonic() - start > 5.0:
            break
    worker.join()
    for _ in range(10):
        executor.spin_once(timeout_sec=0.05)
    elapsed = time.monotonic() - start
    node.destroy_node()

    realtime, _ = out["result"]
    assert elapsed >= 12.0 / 8.0 * 0.9  # paced by the bag (12 s of IMU at 8x)
    assert realtime["policy"] == fast["policy"]  # same cores, same bag time: same scores
    assert clocks and min(clocks) >= T0 and clocks == sorted(clocks)
    policy_cmds = [c for c in commands if c.source == VehicleCommand.SOURCE_POLICY]
    assert len(policy_cmds) == realtime["policy"]["scored_samples"]  # reliable, playback waited for us
    stamps = [c.header.stamp.sec * 10**9 + c.header.stamp.nanosec for c in policy_cmds]
    assert all((s - T0) % FRAME_NS == 0 for s in stamps)


def test_realtime_rejects_bad_rate(tmp_path):
    from edge_inference.evaluation.realtime import evaluate_bag_realtime

    with pytest.raises(ValueError, match="rate"):
        evaluate_bag_realtime(str(tmp_path), eval_config(), policy=IndexPolicy(), rate=0.0)
