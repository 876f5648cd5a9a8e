"""PolicyNode under use_sim_time: scheduling follows /clock and image stamps, not the wall clock."""
from __future__ import annotations

import array
import time

import pytest
from dds_harness import NodeHarness

NS = 1_000_000_000
SIM_START_NS = 1_000 * NS  # far from wall time: any wall-clock leak shows up as a huge offset


@pytest.mark.timeout(60)
def test_sim_time_commands_stamps_and_staleness(ros_context):
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from edge_inference.ros.nodes.policy_node import PolicyNode
    from edge_inference.ros.qos import reliable_qos, sensor_qos
    from edge_inference.ros.stamps import ns_to_stamp
    from edge_inference_msgs.msg import ActionChunk, VehicleCommand

    node = PolicyNode(context=ros_context, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("enabled", value=True),
        Parameter("mode", value="async"), Parameter("max_action_age", value=0.5)])
    h = NodeHarness(ros_context, node, "sim_time_probe")
    commands, chunks = [], []
    h.probe.create_subscription(VehicleCommand, "vehicle/command", commands.append, reliable_qos())
    h.probe.create_subscription(ActionChunk, "policy/action_chunk", chunks.append, reliable_qos())
    pub_clock = h.probe.create_publisher(Clock, "/clock", reliable_qos(10))
    pub_image = h.probe.create_publisher(Image, "camera/image_raw", sensor_qos())
    h.start()
    sim = {"now": SIM_START_NS, "images": True}

    def run_clock(seconds: float):
        """200 Hz /clock at real-time factor 1; a 30 Hz camera stamped in sim time while images are on."""
        step = 5_000_000
        for i in range(int(seconds * 200)):
            sim["now"] += step
            pub_clock.publish(Clock(clock=ns_to_stamp(sim["now"])))
            if sim["images"] and i % 7 == 0:
                img = Image(height=36, width=64, encoding="rgb8", step=192)
                img.data = array.array("B", bytes(64 * 36 * 3))
                img.header.stamp = ns_to_stamp(sim["now"])
                pub_image.publish(img)
            time.sleep(step / NS)

    try:
        run_clock(3.0)
        assert chunks, "no chunk under sim time"
        policy = [c for c in commands if c.source == VehicleCommand.SOURCE_POLICY]
        assert len(policy) > 20
        for c in policy + chunks:
            stamp = c.header.stamp.sec * NS + c.header.stamp.nanosec
            assert SIM_START_NS <= stamp <= sim["now"]  # sim-time stamps, never wall time
        assert all(0.0 <= c.latency_ms < 200.0 for c in chunks)  # latency measured on the sim clock
        # camera stops while sim time runs on: neutral (stale) once max_action_age of sim time has passed
        sim["images"] = False
        n = len(commands)
        run_clock(1.2)
        tail = commands[n:]
        assert tail and tail[-1].source == VehicleCommand.SOURCE_NEUTRAL
        assert node.last_reason in ("stale", "exhausted")
        # the simulator restarts: sim time jumps back to the start; the policy picks up the new timeline
        sim["now"], sim["images"] = SIM_START_NS, True
        n = len(commands)
        run_clock(1.5)
        assert node.scheduler.stats.time_jumps >= 1
        assert any(c.source == VehicleCommand.SOURCE_POLICY for c in commands[n:])
        assert all(c.header.stamp.sec < SIM_START_NS // NS + 2 for c in commands[-10:])
    finally:
        h.close()
