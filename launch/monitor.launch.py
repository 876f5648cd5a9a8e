"""Laptop side: monitor_node + rviz2 + rqt (plots, robot monitor, overlay image) for a running rover.

    ros2 launch edge_inference monitor.launch.py            # everything
    ros2 launch edge_inference monitor.launch.py rqt:=false params_file:=my_camera_mount.yaml

Set ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET to match the robot. rqt_robot_monitor
reads /diagnostics_agg, so diagnostic_aggregator runs here too (groups: config/rqt/diagnostic_analyzers.yaml).
rqt starts ``rqt_delay`` s after the rest: rqt_plot silently drops a restored plot whose topic is
not yet in the graph, so it waits until DDS discovery has seen the robot's topics (start the
robot first). No logic beyond substitutions and conditions.
"""
from launch.actions import DeclareLaunchArgument, TimerAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from edge_inference.core.resources import config_path
from edge_inference.ros.graph import PACKAGE
from launch import LaunchDescription

ARGS = {
    "rviz": ("true", "start rviz2 with config/rviz/rover.rviz"),
    "rqt": ("true", "start rqt with config/rqt/rover.perspective"),
    "rqt_delay": ("5.0", "s to wait before rqt, so rqt_plot finds the robot's topics (discovery over WiFi)"),
    "aggregator": ("true", "start diagnostic_aggregator for rqt_robot_monitor"),
    "params_file": ("", "monitor_node parameter YAML (camera mount, bicycle model, thresholds)"),
    "use_sim_time": ("false", "use /clock (rosbag replay, simulator)"),
}


def generate_launch_description():
    sim_time = {"use_sim_time": PythonExpression(["'", LaunchConfiguration("use_sim_time"), "' == 'true'"])}
    has_params = PythonExpression(["'", LaunchConfiguration("params_file"), "' != ''"])
    monitor = [
        Node(package=PACKAGE, executable="monitor_node", name="monitor_node", output="screen",
             parameters=[sim_time], condition=IfCondition(PythonExpression(["not ", has_params]))),
        Node(package=PACKAGE, executable="monitor_node", name="monitor_node", output="screen",
             parameters=[LaunchConfiguration("params_file"), sim_time], condition=IfCondition(has_params)),
    ]
    views = [
        Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
             arguments=["-d", str(config_path("rviz", "rover.rviz"))], parameters=[sim_time],
             condition=IfCondition(LaunchConfiguration("rviz"))),
        TimerAction(period=LaunchConfiguration("rqt_delay"), actions=[
            Node(package="rqt_gui", executable="rqt_gui", name="rqt", output="log",
                 arguments=["--perspective-file", str(config_path("rqt", "rover.perspective"))],
                 condition=IfCondition(LaunchConfiguration("rqt")))]),
        Node(package="diagnostic_aggregator", executable="aggregator_node", name="analyzers", output="log",
             parameters=[str(config_path("rqt", "diagnostic_analyzers.yaml")), sim_time],
             condition=IfCondition(LaunchConfiguration("aggregator"))),
    ]
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=d, description=h) for k, (d, h) in ARGS.items()]
        + monitor + views)
