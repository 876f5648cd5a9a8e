"""Walking skeleton, end to end on real DDS: the rover graph as `edge-inference up` builds it.

camera (synthetic) -> policy -> ActionChunk + VehicleCommand -> bridge -> bytes on a pty
-> board emulator applies PWM; IMU samples in -> BehaviorState out; command stream
killed -> the bridge sends neutral.
"""
import time

import pytest
from conftest import spin_until
from rclpy.node import Node
from sensor_msgs.msg import Imu, MagneticField

from edge_inference.ros.graph import describe
from edge_inference.ros.graph_runner import Graph
from edge_inference.ros.qos import reliable_qos, sensor_qos


@pytest.fixture
def board():
    """The board emulator on its own pty; the bridge opens its symlink like a USB board."""
    from edge_inference.devices.board_emulator import BoardEmulator
    board = BoardEmulator().start()
    yield board
    board.stop()


def test_rover_graph_end_to_end(ros_context, board):
    from edge_inference_msgs.msg import ActionChunk, BehaviorState, VehicleCommand, VehicleState
    specs = describe(backend="cpu", camera_source="synthetic", serial_port=board.port_path, overrides={
        "policy_node": {"enabled": True},  # backend:=cpu -> the shipped int8 ONNX models
        "behavior_node": {"stride": 10},
        "pwm_bridge_node": {"arm_on_connect": True},
    })
    graph = Graph(specs, context=ros_context).start()
    probe = Node("probe", context=ros_context)
    got = {"chunk": [], "cmd": [], "behavior": [], "state": []}
    probe.create_subscription(ActionChunk, "policy/action_chunk", got["chunk"].append, reliable_qos())
    probe.create_subscription(VehicleCommand, "vehicle/command", got["cmd"].append, reliable_qos())
    probe.create_subscription(BehaviorState, "behavior/state", got["behavior"].append, reliable_qos())
    probe.create_subscription(VehicleState, "vehicle/state", got["state"].append, reliable_qos())
    imu_pub = probe.create_publisher(Imu, "imu/data_raw", sensor_qos())
    mag_pub = probe.create_publisher(MagneticField, "imu/mag", sensor_qos())
    from rclpy.executors import SingleThreadedExecutor
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(probe)
    try:
        # image in -> chunk + commands out, and bytes on the serial peer
        assert spin_until(ex, lambda: got["chunk"] and len(got["cmd"]) > 10, 20.0), {k: len(v) for k, v in got.items()}
        chunk = got["chunk"][-1]
        assert chunk.horizon > 1 and chunk.action_dim == 2 and len(chunk.actions) == chunk.horizon * 2
        assert list(chunk.action_names) == ["steering", "throttle"]
        assert chunk.header.stamp.sec > 0 or chunk.header.stamp.nanosec > 0  # copied from the image
        assert any(c.source == VehicleCommand.SOURCE_POLICY for c in got["cmd"])
        assert spin_until(ex, lambda: board.commands_received > 10 and got["state"], 10.0)
        assert spin_until(ex, lambda: board.applied_us[1] != 1500 or board.applied_us[0] != 1500, 5.0), board.applied_us

        # IMU samples in -> BehaviorState out
        t0 = time.monotonic()
        i = 0
        def feed():
            nonlocal i
            now = probe.get_clock().now().to_msg()
            m = Imu()
            m.header.stamp = now
            m.linear_acceleration.z = 9.81
            imu_pub.publish(m)
            g = MagneticField()
            g.header.stamp = now
            g.magnetic_field.x = 2e-5
            mag_pub.publish(g)
            i += 1
            return bool(got["behavior"])
        while time.monotonic() - t0 < 20.0 and not feed():
            ex.spin_once(timeout_sec=0.01)
        assert got["behavior"], f"no BehaviorState after {i} IMU samples"
        b = got["behavior"][-1]
        assert b.label in list(b.class_names) and abs(sum(b.probabilities) - 1.0) < 1e-3

        # kill the command stream: the bridge alone must drive the board to neutral
        graph.kill("policy_node")
        assert spin_until(ex, lambda: board.applied_us == (1500, 1500), 3.0), board.applied_us
    finally:
        ex.shutdown()
        probe.destroy_node()
        graph.close()


def test_two_namespaced_rovers_share_a_domain_without_crossing_commands(ros_context):
    """namespace:= (issue 15): two cars on one ROS domain; enabling one moves only its own board."""
    from std_srvs.srv import SetBool

    from edge_inference.devices.board_emulator import BoardEmulator
    from edge_inference_msgs.msg import VehicleCommand
    boards = {ns: BoardEmulator().start() for ns in ("car1", "car2")}
    graphs, probe, ex = [], None, None
    try:
        for ns, board in boards.items():
            specs = describe(backend="cpu", camera_source="synthetic", serial_port=board.port_path, namespace=ns,
                             overrides={"policy_node": {"backend": "heuristic", "model_path": ""},
                                        "pwm_bridge_node": {"arm_on_connect": True}})
            graphs.append(Graph([s for s in specs if s.name != "behavior_node"], context=ros_context).start())
        probe = Node("ns_probe", context=ros_context)
        got = {ns: [] for ns in boards}
        for ns in boards:
            probe.create_subscription(VehicleCommand, f"/{ns}/vehicle/command", got[ns].append, reliable_qos())
        from rclpy.executors import SingleThreadedExecutor
        ex = SingleThreadedExecutor(context=ros_context)
        ex.add_node(probe)
        client = probe.create_client(SetBool, "/car1/policy/enable")
        assert client.wait_for_service(timeout_sec=10.0)
        assert {"/car1/policy/enable", "/car2/policy/enable"} <= {n for n, _ in probe.get_service_names_and_types()}
        future = client.call_async(SetBool.Request(data=True))
        assert spin_until(ex, future.done, 5.0) and future.result().success
        policy = VehicleCommand.SOURCE_POLICY
        assert spin_until(ex, lambda: sum(c.source == policy for c in got["car1"]) > 10 and len(got["car2"]) > 10,
                          20.0), {ns: len(v) for ns, v in got.items()}
        assert spin_until(ex, lambda: boards["car1"].applied_us != (1500, 1500), 10.0), boards["car1"].applied_us
        assert all(c.source != policy for c in got["car2"])  # car2 was never enabled
        assert boards["car2"].commands_received > 10 and boards["car2"].applied_us == (1500, 1500)
    finally:
        if ex is not None:
            ex.shutdown()
        if probe is not None:
            probe.destroy_node()
        for g in graphs:
            g.close()
        for b in boards.values():
            b.stop()


def test_external_camera_topic_feeds_the_policy(ros_context):
    """camera_source:=external camera_topic:=...: no camera node; the policy reads another driver's images."""
    import numpy as np
    from sensor_msgs.msg import Image

    from edge_inference.ros.image_conversion import rgb_to_image_msg
    from edge_inference_msgs.msg import ActionChunk
    specs = describe(camera_source="external", camera_topic="/cam_front/image_raw",
                     overrides={"policy_node": {"backend": "heuristic", "model_path": "", "enabled": True}})
    assert "camera_node" not in {s.name for s in specs}
    graph = Graph([s for s in specs if s.name == "policy_node"], context=ros_context).start()
    probe = Node("external_camera", context=ros_context)
    chunks = []
    probe.create_subscription(ActionChunk, "policy/action_chunk", chunks.append, reliable_qos())
    images = probe.create_publisher(Image, "/cam_front/image_raw", sensor_qos())
    from rclpy.executors import SingleThreadedExecutor
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(probe)
    frame = np.full((90, 160, 3), 100, np.uint8)

    def publish_frame() -> bool:
        msg = rgb_to_image_msg(frame, encoding="rgb8")
        msg.header.stamp = probe.get_clock().now().to_msg()
        images.publish(msg)
        return bool(chunks)
    try:
        end = time.monotonic() + 15.0
        while time.monotonic() < end and not publish_frame():
            ex.spin_once(timeout_sec=0.05)
        assert chunks, "the policy never saw the external camera's images"
    finally:
        ex.shutdown()
        probe.destroy_node()
        graph.close()
