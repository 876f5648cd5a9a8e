"""monitor_node over real DDS: markers follow the chunk, the overlay exists only for a watcher."""
import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from conftest import spin_until
from edge_inference.markers import COMMAND_ID, PATH_ID
from edge_inference.qos import reliable_qos, sensor_qos

H, W = 120, 160


@pytest.fixture
def graph(ros_context):
    from edge_inference.nodes.monitor_node import MonitorNode
    mon = MonitorNode(context=ros_context, parameter_overrides=[Parameter("marker_rate_hz", value=20.0),
                                                                Parameter("overlay_max_hz", value=100.0)])
    probe = Node("monitor_probe", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(mon)
    ex.add_node(probe)
    yield mon, probe, ex
    ex.shutdown()
    probe.destroy_node()
    mon.destroy_node()


def _chunk(probe, steering, throttle=0.5, horizon=20):
    from edge_inference_msgs.msg import ActionChunk
    msg = ActionChunk(horizon=horizon, action_dim=2, dt=0.05, action_names=["steering", "throttle"],
                      actions=np.tile([steering, throttle], horizon).astype(np.float32).tolist(), latency_ms=30.0)
    msg.header.stamp = probe.get_clock().now().to_msg()
    msg.header.frame_id = "camera_link"
    return msg


def test_markers_follow_straight_and_turning_chunks(graph):
    from edge_inference_msgs.msg import ActionChunk, VehicleCommand
    from visualization_msgs.msg import MarkerArray
    mon, probe, ex = graph
    got = []
    probe.create_subscription(MarkerArray, "monitor/markers", got.append, reliable_qos(10))
    pub_chunk = probe.create_publisher(ActionChunk, "policy/action_chunk", reliable_qos(10))
    pub_cmd = probe.create_publisher(VehicleCommand, "vehicle/command", reliable_qos(10))
    assert spin_until(ex, lambda: pub_chunk.get_subscription_count() > 0 and mon.pub_markers.get_subscription_count() > 0, 10)

    def path_end(steering):
        got.clear()
        pub_chunk.publish(_chunk(probe, steering))
        pub_cmd.publish(VehicleCommand(steering=steering, throttle=0.5, source=VehicleCommand.SOURCE_POLICY))

        def arrived():
            for arr in got:
                by_id = {m.id: m for m in arr.markers}
                path, arrow = by_id.get(PATH_ID), by_id.get(COMMAND_ID)
                if path and arrow and path.points and arrow.points and \
                        np.sign(arrow.points[1].y) == np.sign(steering):
                    return path.points[-1], arrow, path.header.frame_id
            return None
        assert spin_until(ex, lambda: arrived() is not None, 10), "no MarkerArray for the chunk"
        return arrived()

    end, arrow, frame = path_end(0.0)
    assert frame == "base_link"
    assert end.x == pytest.approx(1.5, abs=1e-3) and end.y == pytest.approx(0.0, abs=1e-6)  # 1.5 m/s x 1 s
    end_l, arrow_l, _ = path_end(0.8)
    assert end_l.y > 0.3 and end_l.x < 1.5 and arrow_l.points[1].y > 0
    end_r, arrow_r, _ = path_end(-0.8)
    assert end_r.y == pytest.approx(-end_l.y, abs=1e-4) and arrow_r.points[1].y < 0


def test_overlay_published_only_with_a_subscriber(graph):
    from edge_inference_msgs.msg import ActionChunk
    from sensor_msgs.msg import Image

    from edge_inference.image_conversion import image_msg_to_rgb, rgb_to_image_msg
    mon, probe, ex = graph
    pub_img = probe.create_publisher(Image, "camera/image_raw", sensor_qos())
    pub_chunk = probe.create_publisher(ActionChunk, "policy/action_chunk", reliable_qos(10))
    frame = np.full((H, W, 3), 80, np.uint8)

    def send_frames(n):
        for _ in range(n):
            msg = rgb_to_image_msg(frame)
            msg.header.stamp = probe.get_clock().now().to_msg()
            pub_img.publish(msg)
            ex.spin_once(timeout_sec=0.02)

    assert spin_until(ex, lambda: pub_img.get_subscription_count() > 0 and pub_chunk.get_subscription_count() > 0, 10)
    pub_chunk.publish(_chunk(probe, 0.0))
    send_frames(20)
    assert spin_until(ex, lambda: mon.overlay_skipped >= 5, 5)
    assert mon.overlay_frames == 0                      # nobody watched: nothing drawn or sent

    overlays = []
    probe.create_subscription(Image, "monitor/overlay", overlays.append, sensor_qos())
    assert spin_until(ex, lambda: mon.pub_overlay.get_subscription_count() > 0, 10)
    deadline_ok = False
    for _ in range(50):
        send_frames(2)
        if overlays:
            deadline_ok = True
            break
    assert deadline_ok, "subscribed but no overlay arrived"
    img = image_msg_to_rgb(overlays[-1])
    assert img.shape == (H, W, 3)
    assert (img != frame).any(axis=2).mean() > 0.01     # gauges/text/path were drawn
    assert mon.overlay_frames >= 1


def test_static_transform_and_camera_matrix_from_parameters():
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo

    from edge_inference.nodes.monitor_node import camera_matrix_for, static_camera_transform
    from edge_inference.overlay import CameraMountConfig, intrinsics_from_fov
    mount = CameraMountConfig(camera_x_m=0.3, camera_z_m=0.2, camera_pitch_rad=0.5)
    tf = static_camera_transform(mount, Time(sec=1))
    assert (tf.header.frame_id, tf.child_frame_id) == ("base_link", "camera_link")
    assert (tf.transform.translation.x, tf.transform.translation.z) == (0.3, 0.2)
    assert tf.transform.rotation.y == pytest.approx(np.sin(0.25)) and tf.transform.rotation.w == pytest.approx(np.cos(0.25))
    np.testing.assert_allclose(camera_matrix_for(None, W, H, 90.0), intrinsics_from_fov(W, H, 90.0))
    info = CameraInfo(width=320, height=240, k=[200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0])
    K = camera_matrix_for(info, 160, 120, 90.0)      # half-size image: K halves
    np.testing.assert_allclose(K[:2], [[100.0, 0.0, 80.0], [0.0, 100.0, 60.0]])


def test_static_tf_on_tf_static_when_tf2_msgs_exists(graph):
    mon = graph[0]
    try:
        import tf2_msgs.msg  # noqa: F401
    except ImportError:
        assert mon.static_tf_published is False   # and the node said so in its log and diagnostics
        pytest.skip("tf2_msgs is not installed (no PyPI wheel): the node cannot publish /tf_static here")
    assert mon.static_tf_published is True
