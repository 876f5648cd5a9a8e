"""Bring up the rover: camera, policy, behavior and PWM bridge nodes.

Thin over ``edge_inference.ros.graph.describe`` (tested without launch); this file
only declares arguments and turns the description into launch_ros actions.
    ros2 launch edge_inference rover.launch.py backend:=npu serial_port:=/dev/ttyACM0
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from edge_inference.ros.graph import PACKAGE, describe
from launch import LaunchDescription

ARGS = {
    "backend": ("cpu", "cpu = int8 on ONNX Runtime, npu = HailoRT on the Hailo-8"),
    "camera_source": ("", "override camera source (v4l2:/dev/video0, gstreamer:..., file:..., synthetic)"),
    "serial_port": ("", "override the Arduino serial port"),
    "config": ("", "parameter YAML replacing config/rover.yaml"),
    "use_sim_time": ("false", "use /clock (rosbag replay, simulator)"),
    "record": ("false", "also record a rosbag2 of the rover topics (edge-inference record)"),
}


def _nodes(context):
    value = {k: LaunchConfiguration(k).perform(context) for k in ARGS}
    specs = describe(backend=value["backend"], camera_source=value["camera_source"] or None,
                     serial_port=value["serial_port"] or None, config=value["config"] or None,
                     use_sim_time=value["use_sim_time"].lower() == "true")
    actions = [Node(package=PACKAGE, executable=s.executable, name=s.name, parameters=[s.parameters],
                    remappings=list(s.remappings), output="screen") for s in specs]
    if value["record"].lower() == "true":
        from launch.actions import ExecuteProcess
        actions.append(ExecuteProcess(cmd=["edge-inference", "record"], output="screen"))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=d, description=h) for k, (d, h) in ARGS.items()]
        + [OpaqueFunction(function=_nodes)])
