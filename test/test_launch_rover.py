"""launch_pytest: `ros2 launch edge_inference rover.launch.py` starts the whole graph.

Runs where ROS 2 (launch, launch_ros, launch_pytest) and the package are installed
(`colcon build` on Jazzy). The dev/CI venv has no launch packages on PyPI, so
there it skips; the same description is exercised here by test_graph.py and the
in-process integration test.
"""
import pytest

launch_pytest = pytest.importorskip(
    "launch_pytest", reason="launch_pytest is not installed (needs a ROS 2 install; not on PyPI)")
launch = pytest.importorskip("launch")
launch_ros = pytest.importorskip("launch_ros")

from pathlib import Path  # noqa: E402

from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "rover.launch.py"


@launch_pytest.fixture
def rover_launch():
    return launch.LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
                                 launch_arguments={"backend": "cpu", "camera_source": "synthetic",
                                                   "serial_port": "/dev/null"}.items()),
        launch_pytest.actions.ReadyToTest(),
    ])


@pytest.mark.launch(fixture=rover_launch)
def test_rover_graph_publishes_images_and_commands():
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from edge_inference_msgs.msg import VehicleCommand
    rclpy.init()
    try:
        node = Node("launch_probe")
        got = {"image": 0, "cmd": 0}
        node.create_subscription(Image, "camera/image_raw", lambda m: got.__setitem__("image", got["image"] + 1),
                                 rclpy.qos.qos_profile_sensor_data)
        node.create_subscription(VehicleCommand, "vehicle/command",
                                 lambda m: got.__setitem__("cmd", got["cmd"] + 1), 10)
        import time
        end = time.monotonic() + 20
        while time.monotonic() < end and not (got["image"] > 5 and got["cmd"] > 5):
            rclpy.spin_once(node, timeout_sec=0.1)
        assert got["image"] > 5 and got["cmd"] > 5, got
    finally:
        rclpy.shutdown()
