"""The rover's node graph as data: one tested description for every way to start it.

``launch/rover.launch.py`` turns it into launch_ros ``Node`` actions and
``edge-inference up`` instantiates the same nodes in one process. Parameters are
layered, later layers winning:

1. ``config/rover.yaml`` (shipped defaults),
2. ``config/backends/<backend>.yaml`` (shipped models for that backend),
3. the user's ``config:=`` file, *overlaid* (it only needs the keys it changes),
4. launch arguments (``camera_source``, ``serial_port``, ``policy_model``, ``behavior_model``),
5. ``overrides`` (``up --param``, tests, the demo).

Every key of every layer must be a parameter its node declares: a typo is a
``GraphConfigError`` naming the node, the key and the closest known name.
``preflight`` checks that the model files the chosen backends load exist, so a
missing HEF is one line before any node starts, not a traceback per node.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge_inference.core.errors import EdgeInferenceError, yaml_problem
from edge_inference.core.resources import config_path

PACKAGE = "edge_inference"
BACKENDS = ("cpu", "npu")
#: camera_source value that starts no camera node: the policy reads an existing driver's topic.
EXTERNAL_CAMERA = "external"
CAMERA_TOPIC = "camera/image_raw"
#: Where SROS2 enclaves of the rover's nodes live in the keystore (``ros2 security create_enclave``).
DEFAULT_ENCLAVE_ROOT = "/edge_inference"
#: Parameters every rclpy node has besides its config dataclasses.
BUILTIN_PARAMETERS = ("use_sim_time",)


@dataclass(frozen=True)
class NodeSpec:
    """One node: how ``ros2 launch`` starts it and how ``up`` builds it in-process."""

    name: str
    executable: str
    module: str          # python module holding the Node class
    class_name: str
    parameters: dict = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    namespace: str = ""
    enclave: str = ""    # SROS2 enclave (``--enclave``); empty: none (security off)

    def node_class(self):
        return getattr(importlib.import_module(self.module), self.class_name)

    @property
    def ros_arguments(self) -> list[str]:
        """Process-level ROS arguments for ``ros2 launch`` (the enclave is chosen per process)."""
        return ["--enclave", self.enclave] if self.enclave else []

    def node_kwargs(self) -> dict:
        """``rclpy.node.Node`` keyword arguments for an in-process node: namespace and remappings."""
        kwargs: dict = {"namespace": self.namespace} if self.namespace else {}
        if self.remappings:
            kwargs["cli_args"] = ["--ros-args"] + [a for src, dst in self.remappings for a in ("-r", f"{src}:={dst}")]
        return kwargs


# name -> (executable, module, class)
NODE_TYPES = {
    "camera_node": ("camera_node", "edge_inference.ros.nodes.camera_node", "CameraNode"),
    "policy_node": ("policy_node", "edge_inference.ros.nodes.policy_node", "PolicyNode"),
    "behavior_node": ("behavior_node", "edge_inference.ros.nodes.behavior_node", "BehaviorNode"),
    "pwm_bridge_node": ("pwm_bridge_node", "edge_inference.ros.nodes.pwm_bridge_node", "PwmBridgeNode"),
    "sim_node": ("sim_node", "edge_inference.ros.nodes.sim_node", "SimNode"),
    "monitor_node": ("monitor_node", "edge_inference.ros.nodes.monitor_node", "MonitorNode"),
    "expert_node": ("expert_node", "edge_inference.ros.nodes.expert_node", "ExpertNode"),
}
ROVER_NODES = ("camera_node", "policy_node", "behavior_node", "pwm_bridge_node")
MODEL_NODES = ("policy_node", "behavior_node")


class GraphConfigError(EdgeInferenceError, ValueError):
    """Bad launch arguments, parameter files or models: one clear message, nothing started."""


class GraphConfigWarning(UserWarning):
    """A configuration that runs but probably not as meant (an empty parameter file)."""


def node_parameter_names(node: str) -> set[str]:
    """Every parameter ``node`` declares: its config dataclasses' fields plus rclpy's own."""
    mod = importlib.import_module(NODE_TYPES[node][1])
    classes = getattr(mod, "CONFIG_CLASSES", None) or (mod.CONFIG_CLASS,)
    return {f.name for cls in classes for f in dataclasses.fields(cls)
            if f.metadata.get("ros") is not False} | set(BUILTIN_PARAMETERS)


def check_parameter_names(layer: dict[str, dict], source: str) -> None:
    """Unknown nodes or parameter names in one layer -> GraphConfigError with the closest known name."""
    for node in sorted(set(layer) - set(NODE_TYPES)):
        close = difflib.get_close_matches(node, sorted(NODE_TYPES), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"nodes: {sorted(NODE_TYPES)}"
        raise GraphConfigError(f"{source}: parameters given for unknown nodes ['{node}']; {hint}")
    for node, params in layer.items():
        known = node_parameter_names(node)
        for key in params:
            if key in known or key.startswith("qos_overrides."):
                continue
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GraphConfigError(f"{source}: {node} has no parameter {key!r}{hint}")


def load_param_file(path: str | Path) -> dict[str, dict]:
    """Read a ROS 2 parameter YAML ({node: {ros__parameters: {...}}}) into {node: params}."""
    path = Path(path)
    if not path.is_file():
        raise GraphConfigError(f"parameter file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise GraphConfigError(f"not a valid YAML parameter file: {yaml_problem(err, path)}") from err
    if data is None:
        warnings.warn(f"{path} is empty: no parameter changed", GraphConfigWarning, stacklevel=2)
        return {}
    if not isinstance(data, dict):
        raise GraphConfigError(f"{path}: expected a mapping of node names")
    out = {}
    for node, body in data.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise GraphConfigError(f"{path}: node {node!r} has no ros__parameters")
        out[str(node).lstrip("/")] = dict(body["ros__parameters"] or {})
    return out


def merge_params(*layers: dict[str, dict]) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for layer in layers:
        for node, params in layer.items():
            merged.setdefault(node, {}).update(copy.deepcopy(params))
    return merged


def _namespace(namespace: str | None) -> str:
    ns = (namespace or "").strip().strip("/")
    if ns and not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part) for part in ns.split("/")):
        raise GraphConfigError(f"namespace {namespace!r} is not a valid ROS namespace "
                               "(letters, digits and _ per part, not starting with a digit)")
    return f"/{ns}" if ns else ""


def describe(backend: str = "cpu", camera_source: str | None = None, serial_port: str | None = None,
             config: str | Path | None = None, use_sim_time: bool = False, with_sim: bool = False,
             overrides: dict[str, dict] | None = None, policy_model: str | None = None,
             behavior_model: str | None = None, camera_topic: str | None = None,
             namespace: str | None = None, enclave_root: str | None = None) -> list[NodeSpec]:
    """The node list with fully merged parameters.

    backend: "cpu" (int8 on ONNX Runtime) or "npu" (HailoRT).
    config: the user's parameter YAML, overlaid on the shipped files (module docstring).
    policy_model / behavior_model: model directories (``model_path`` of the model nodes).
    camera_source: ``external`` starts no camera node; the policy reads ``camera_topic``.
    camera_topic: the image topic (remaps ``camera/image_raw`` of every node).
    namespace: pushes every node (and its relative topics/services) under ``/<namespace>``.
    enclave_root: SROS2: each node runs in enclave ``<enclave_root>/<node>``; None: no security.
    with_sim: add the simulator node (demo / closed-loop tests).
    overrides: {node: {param: value}} applied last (tests, demo, ``up --param``).
    """
    if backend not in BACKENDS:
        raise GraphConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    layers = [("config/rover.yaml", load_param_file(config_path("rover.yaml"))),
              (f"config/backends/{backend}.yaml", load_param_file(config_path("backends", f"{backend}.yaml")))]
    if config:
        layers.append((str(config), load_param_file(config)))
    args: dict[str, dict] = {}
    if camera_source:
        args["camera_node"] = {"camera_source": camera_source}
    if serial_port:
        args["pwm_bridge_node"] = {"serial_port": serial_port}
    if policy_model:
        args["policy_node"] = {"model_path": policy_model}
    if behavior_model:
        args["behavior_node"] = {"model_path": behavior_model}
    layers.append(("launch arguments", args))
    if overrides:
        layers.append(("parameter overrides", overrides))
    for source, layer in layers:
        check_parameter_names(layer, source)
    params = merge_params(*(layer for _, layer in layers))

    names = list(ROVER_NODES) + (["sim_node"] if with_sim else [])
    if params.get("camera_node", {}).get("camera_source") == EXTERNAL_CAMERA:
        names.remove("camera_node")
        camera_topic = camera_topic or f"/{CAMERA_TOPIC}"
    remappings: tuple[tuple[str, str], ...] = ()
    if camera_topic:
        info = camera_topic.rsplit("/", 1)[0] + "/camera_info" if "/" in camera_topic else "camera_info"
        remappings = ((CAMERA_TOPIC, camera_topic), ("camera/camera_info", info))
    ns = _namespace(namespace)
    root = (enclave_root or "").rstrip("/")
    if enclave_root is not None and not root.startswith("/"):
        raise GraphConfigError(f"enclave_root must be an absolute enclave path like {DEFAULT_ENCLAVE_ROOT!r}, "
                               f"got {enclave_root!r}")
    specs = []
    for name in names:
        p = dict(params.get(name, {}))
        p["use_sim_time"] = bool(use_sim_time)
        exe, module, cls = NODE_TYPES[name]
        specs.append(NodeSpec(name=name, executable=exe, module=module, class_name=cls, parameters=p,
                              remappings=remappings, namespace=ns,
                              enclave=f"{root}/{name}" if enclave_root is not None else ""))
    return specs


# -------------------------------------------------------------------------------- model preflight
#: backend -> (files it loads from a model directory, the command that writes them)
MODEL_REQUIREMENTS = {
    "onnxruntime": (("model.onnx",), "edge-inference export --model {path}"),
    "onnxruntime-int8": (("model.int8.onnx",), "edge-inference quantize --model {path} --dataset ... "
                                                "(after `edge-inference export --model {path}`)"),
    "hailo": (("model.hef", "model.hef.json"), "edge-inference export --model {path} --split, then "
                                               "edge-inference hailo-compile --model {path} (where the Hailo "
                                               "Dataflow Compiler is installed)"),
    "torch": (("config.json",), "edge-inference train-act / train-fsq (a checkpoint directory)"),
    "torch-int8": (("config.json",), "edge-inference train-act / train-fsq (a checkpoint directory)"),
}


def model_problem(node: str, backend: str, model_path: str) -> str | None:
    """One line saying what is missing for ``node``'s model and what writes it; None when it is there."""
    from edge_inference.core.resources import resolve_model_path

    if backend not in MODEL_REQUIREMENTS:
        return None  # the heuristic stand-in needs no file; unknown backends fail the node's own validation
    arg = "policy_model" if node == "policy_node" else "behavior_model"
    if not model_path:
        return f"{node}: backend {backend!r} needs a model: set {arg}:=DIR (or {node}.model_path)"
    path = resolve_model_path(model_path)
    if not path.exists():
        return f"{node}: model {model_path} does not exist (set {arg}:=DIR)"
    files, command = MODEL_REQUIREMENTS[backend]
    if path.is_file():
        return None  # a model file named directly: the backend checks its type
    missing = [f for f in files if not (path / f).is_file()]
    if not missing:
        return None
    return (f"{node}: {model_path} has no {' / '.join(missing)} for backend {backend!r}; "
            f"make it with: {command.format(path=path)}")


def preflight(specs: list[NodeSpec]) -> None:
    """Check every model file the nodes will load, before any node starts.

    Raises one GraphConfigError with one line per model that cannot load, so
    ``backend:=npu`` with no compiled HEF stops the launch with the fix instead of
    killing each model node with a traceback (the bridge never arms: the car stays neutral).
    """
    problems = [problem for s in specs if s.name in MODEL_NODES
                if (problem := model_problem(s.name, str(s.parameters.get("backend", "")),
                                             str(s.parameters.get("model_path", "")))) is not None]
    if problems:
        raise GraphConfigError(f"{len(problems)} model(s) cannot load:\n  " + "\n  ".join(problems))


def security_environment(keystore: str | None = None) -> dict[str, str]:
    """Environment that makes rcl load each node's enclave and refuse to run without it (SROS2)."""
    env = {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce"}
    if keystore:
        env["ROS_SECURITY_KEYSTORE"] = str(Path(keystore).expanduser())
    return env


def record_command(namespace: str | None = None) -> list[str]:
    """Arguments of ``edge-inference`` that record the rover's topics (``record:=true``)."""
    if _namespace(namespace):
        raise GraphConfigError("record:=true records the un-namespaced rover topics; with namespace:= run "
                               "`ros2 bag record` on the namespaced topics instead")
    return ["record"]


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
