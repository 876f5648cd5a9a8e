"""The node-graph description that both rover.launch.py and `edge-inference up` use."""
import pytest

from edge_inference.core.resources import config_path
from edge_inference.ros.graph import ROVER_NODES, GraphConfigError, describe, load_param_file


def test_cpu_backend_selects_int8_onnxruntime():
    specs = {s.name: s for s in describe(backend="cpu")}
    assert tuple(specs) == ROVER_NODES
    assert specs["policy_node"].parameters["backend"] == "onnxruntime-int8"
    assert specs["behavior_node"].parameters["backend"] == "onnxruntime-int8"


def test_npu_backend_selects_hailo():
    specs = {s.name: s for s in describe(backend="npu")}
    assert specs["policy_node"].parameters["backend"] == "hailo"
    assert specs["behavior_node"].parameters["backend"] == "hailo"


def test_launch_arguments_override_yaml_and_sim_time_reaches_every_node():
    specs = {s.name: s for s in describe(backend="cpu", camera_source="file:drive.mp4",
                                         serial_port="/dev/ttyACM0", use_sim_time=True)}
    assert specs["camera_node"].parameters["camera_source"] == "file:drive.mp4"
    assert specs["pwm_bridge_node"].parameters["serial_port"] == "/dev/ttyACM0"
    assert all(s.parameters["use_sim_time"] is True for s in specs.values())


def test_overrides_apply_last_and_sim_adds_simulator():
    specs = {s.name: s for s in describe(overrides={"policy_node": {"backend": "torch"}}, with_sim=True)}
    assert specs["policy_node"].parameters["backend"] == "torch"
    assert "sim_node" in specs


def test_bad_backend_and_unknown_node_are_rejected(tmp_path):
    with pytest.raises(GraphConfigError, match="backend"):
        describe(backend="gpu")
    with pytest.raises(GraphConfigError, match="unknown nodes"):
        describe(overrides={"planner_node": {"x": 1}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera_node:\n  width: 3\n")
    with pytest.raises(GraphConfigError, match="ros__parameters"):
        load_param_file(bad)
    with pytest.raises(GraphConfigError, match="not found"):
        describe(config=tmp_path / "missing.yaml")


def test_every_yaml_parameter_is_declared_by_its_node(ros_context):
    """A typo in config/*.yaml must not be silently ignored by the nodes."""
    import dataclasses
    import importlib
    declared = {}
    for node in (*ROVER_NODES, "sim_node"):
        mod = importlib.import_module(f"edge_inference.ros.nodes.{node}")
        classes = getattr(mod, "CONFIG_CLASSES", None) or (mod.CONFIG_CLASS,)
        declared[node] = {f.name for cls in classes for f in dataclasses.fields(cls)} | {"use_sim_time"}
    for path in [config_path("rover.yaml"), config_path("backends", "cpu.yaml"), config_path("backends", "npu.yaml")]:
        for node, params in load_param_file(path).items():
            assert set(params) <= declared[node], f"{path.name}: {node} undeclared {set(params) - declared[node]}"


def test_up_param_overrides_and_sim_wiring():
    from edge_inference.ros.graph import merge_params, parse_param_overrides, sim_overrides
    o = parse_param_overrides(["policy_node.model_path=", "policy_node.control_rate=20", "camera_node.width=640"])
    assert o == {"policy_node": {"model_path": "", "control_rate": 20}, "camera_node": {"width": 640}}
    with pytest.raises(GraphConfigError):
        parse_param_overrides(["no_dot=1"])
    specs = {s.name: s for s in describe(with_sim=True, overrides=merge_params(sim_overrides("/tmp/x/ttyBOARD"), o))}
    assert specs["pwm_bridge_node"].parameters["serial_port"] == specs["sim_node"].parameters["board_port"]
    assert specs["camera_node"].parameters["camera_source"] == "sim"
    assert specs["camera_node"].parameters["width"] == 640
