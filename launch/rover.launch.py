"""Bring up the rover: camera, policy, behavior and PWM bridge nodes.

Thin over ``edge_inference.ros.graph`` (tested without launch): this file only
declares arguments, runs the model preflight and turns the description into
launch_ros actions.
    ros2 launch edge_inference rover.launch.py backend:=npu serial_port:=/dev/ttyACM0

A preflight failure (e.g. ``backend:=npu`` and no compiled HEF) raises
GraphConfigError before any node starts: ``ros2 launch`` prints it on one line per
model ("Caught exception in launch ...") and exits 1; the bridge never starts, so
the car stays neutral.
"""
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage

from edge_inference.ros.graph import (
    BACKENDS,
    DEFAULT_ENCLAVE_ROOT,
    PACKAGE,
    describe,
    preflight,
    record_command,
    security_environment,
)
from launch import LaunchDescription

ARGS = {
    "backend": ("cpu", "cpu = int8 on ONNX Runtime, npu = HailoRT on the Hailo-8", BACKENDS),
    "policy_model": ("", "policy model directory (your ACT export); empty: the backend's shipped model", None),
    "behavior_model": ("", "behavior model directory (your FSQ export); empty: the backend's shipped model", None),
    "camera_source": ("", "v4l2:/dev/video0, picamera2:0 (Pi CSI camera), gstreamer:..., file:..., synthetic, "
                          "or external (no camera node: read camera_topic from your own driver)", None),
    "camera_topic": ("", "image topic the policy reads (external camera driver, e.g. /camera/image_raw)", None),
    "serial_port": ("", "override the Arduino serial port", None),
    "config": ("", "parameter YAML overlaid on config/rover.yaml + config/backends/<backend>.yaml "
                   "(give only the keys you change; launch arguments still win)", None),
    "namespace": ("", "push every node, topic and service under /<namespace> (two cars on one domain)", None),
    "use_sim_time": ("false", "use /clock (rosbag replay, simulator)", ("true", "false")),
    "record": ("false", "also record a rosbag2 of the rover topics (edge-inference record)", ("true", "false")),
    "security": ("false", "SROS2: run each node in its enclave <enclave_root>/<node>, Enforce strategy",
                 ("true", "false")),
    "enclave_root": (DEFAULT_ENCLAVE_ROOT, "keystore path of the rover's enclaves (security:=true)", None),
    "keystore": ("", "SROS2 keystore directory (security:=true; default: $ROS_SECURITY_KEYSTORE)", None),
}


def _nodes(context):
    value = {k: LaunchConfiguration(k).perform(context) for k in ARGS}
    secure = value["security"].lower() == "true"
    specs = describe(backend=value["backend"], camera_source=value["camera_source"] or None,
                     serial_port=value["serial_port"] or None, config=value["config"] or None,
                     use_sim_time=value["use_sim_time"].lower() == "true",
                     policy_model=value["policy_model"] or None, behavior_model=value["behavior_model"] or None,
                     camera_topic=value["camera_topic"] or None, namespace=value["namespace"] or None,
                     enclave_root=value["enclave_root"] if secure else None)
    preflight(specs)  # GraphConfigError: one line per model, before anything starts
    actions = []
    if secure:
        actions += [SetEnvironmentVariable(k, v) for k, v in security_environment(value["keystore"] or None).items()]
    actions += [Node(package=PACKAGE, executable=s.executable, name=s.name, namespace=s.namespace or None,
                     parameters=[s.parameters], remappings=list(s.remappings), ros_arguments=s.ros_arguments or None,
                     output="screen") for s in specs]
    if value["record"].lower() == "true":
        # colcon installs the CLI under lib/edge_inference/, not on PATH; a plain ExecuteProcess because
        # launch_ros Node appends --ros-args, which the CLI's argparse refuses.
        actions.append(ExecuteProcess(cmd=[ExecutableInPackage("edge-inference", PACKAGE),
                                           *record_command(value["namespace"] or None)], output="screen"))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=d, description=h, **({"choices": list(c)} if c else {}))
         for k, (d, h, c) in ARGS.items()]
        + [OpaqueFunction(function=_nodes)])
