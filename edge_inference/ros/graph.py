"""The rover's node graph as data: one tested description for every way to start it.

``launch/rover.launch.py`` turns it into launch_ros ``Node`` actions and
``edge-inference up`` instantiates the same nodes in one process. Parameters
come from ``config/rover.yaml`` merged with ``config/backends/<backend>.yaml``
and then with launch arguments, in that order.
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge_inference.core.errors import EdgeInferenceError, yaml_problem
from edge_inference.core.resources import config_path

PACKAGE = "edge_inference"
BACKENDS = ("cpu", "npu")


@dataclass(frozen=True)
class NodeSpec:
    """One node: how ``ros2 launch`` starts it and how ``up`` builds it in-process."""

    name: str
    executable: str
    module: str          # python module holding the Node class
    class_name: str
    parameters: dict = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    def node_class(self):
        return getattr(importlib.import_module(self.module), self.class_name)


# name -> (executable, module, class)
NODE_TYPES = {
    "camera_node": ("camera_node", "edge_inference.ros.nodes.camera_node", "CameraNode"),
    "policy_node": ("policy_node", "edge_inference.ros.nodes.policy_node", "PolicyNode"),
    "behavior_node": ("behavior_node", "edge_inference.ros.nodes.behavior_node", "BehaviorNode"),
    "pwm_bridge_node": ("pwm_bridge_node", "edge_inference.ros.nodes.pwm_bridge_node", "PwmBridgeNode"),
    "sim_node": ("sim_node", "edge_inference.ros.nodes.sim_node", "SimNode"),
    "monitor_node": ("monitor_node", "edge_inference.ros.nodes.monitor_node", "MonitorNode"),
}
ROVER_NODES = ("camera_node", "policy_node", "behavior_node", "pwm_bridge_node")


class GraphConfigError(EdgeInferenceError, ValueError):
    """Bad launch arguments or parameter files."""


def load_param_file(path: str | Path) -> dict[str, dict]:
    """Read a ROS 2 parameter YAML ({node: {ros__parameters: {...}}}) into {node: params}."""
    path = Path(path)
    if not path.is_file():
        raise GraphConfigError(f"parameter file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise GraphConfigError(f"not a valid YAML parameter file: {yaml_problem(err, path)}") from err
    if not isinstance(data, dict):
        raise GraphConfigError(f"{path}: expected a mapping of node names")
    out = {}
    for node, body in data.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise GraphConfigError(f"{path}: node {node!r} has no ros__parameters")
        out[node.lstrip("/")] = dict(body["ros__parameters"] or {})
    return out


def merge_params(*layers: dict[str, dict]) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for layer in layers:
        for node, params in layer.items():
            merged.setdefault(node, {}).update(copy.deepcopy(params))
    return merged


def describe(backend: str = "cpu", camera_source: str | None = None, serial_port: str | None = None,
             config: str | Path | None = None, use_sim_time: bool = False, with_sim: bool = False,
             overrides: dict[str, dict] | None = None) -> list[NodeSpec]:
    """The node list with fully merged parameters.

    backend: "cpu" (int8 on ONNX Runtime) or "npu" (HailoRT).
    with_sim: add the simulator node (demo / closed-loop tests).
    overrides: {node: {param: value}} applied last (tests, demo).
    """
    if backend not in BACKENDS:
        raise GraphConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    base = load_param_file(config or config_path("rover.yaml"))
    if config and not base:  # an empty or comment-only file given on purpose is a mistake, not "defaults"
        raise GraphConfigError(f"{config}: no node parameters in the file")
    layers = [base, load_param_file(config_path("backends", f"{backend}.yaml"))]
    args: dict[str, dict] = {}
    if camera_source:
        args["camera_node"] = {"camera_source": camera_source}
    if serial_port:
        args["pwm_bridge_node"] = {"serial_port": serial_port}
    layers.append(args)
    if overrides:
        layers.append(overrides)
    params = merge_params(*layers)
    names = list(ROVER_NODES) + (["sim_node"] if with_sim else [])
    unknown = sorted(set(params) - set(NODE_TYPES))
    if unknown:
        raise GraphConfigError(f"parameters given for unknown nodes: {unknown}")
    specs = []
    for name in names:
        p = dict(params.get(name, {}))
        p["use_sim_time"] = bool(use_sim_time)
        exe, module, cls = NODE_TYPES[name]
        specs.append(NodeSpec(name=name, executable=exe, module=module, class_name=cls, parameters=p))
    return specs


def parse_param_overrides(items: list[str]) -> dict[str, dict]:
    """['policy_node.mode=ensemble', ...] -> {'policy_node': {'mode': 'ensemble'}} (YAML-typed values)."""
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, name = key.partition(".")
        if not sep or not dot or not node or not name:
            raise GraphConfigError(f"--param expects NODE.NAME=VALUE, got {item!r}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as err:
            raise GraphConfigError(f"--param {item!r}: value is not valid YAML: {yaml_problem(err)}") from err
        out.setdefault(node, {})[name] = "" if parsed is None else parsed
    return out


def sim_overrides(board_port: str) -> dict[str, dict]:
    """Wire the simulator into the rover graph: sim camera, bridge on the simulated board's port."""
    return {"camera_node": {"camera_source": "sim"},
            "sim_node": {"board_port": board_port},
            "pwm_bridge_node": {"serial_port": board_port, "arm_on_connect": True},
            "policy_node": {"enabled": True}}
