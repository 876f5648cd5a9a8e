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


# -- the user's own config and models (issue 11) -------------------------------------------------------
def test_user_config_overlays_shipped_files_and_can_change_backend_and_model(tmp_path):
    """config:= comes after config/backends/<backend>.yaml: the user's model wins, other keys stay shipped."""
    mine = tmp_path / "my.yaml"
    mine.write_text("policy_node:\n  ros__parameters:\n    backend: onnxruntime\n    model_path: /opt/car/act\n"
                    "camera_node:\n  ros__parameters:\n    width: 640\n")
    specs = {s.name: s for s in describe(backend="cpu", config=mine)}
    assert specs["policy_node"].parameters["backend"] == "onnxruntime"
    assert specs["policy_node"].parameters["model_path"] == "/opt/car/act"
    assert specs["camera_node"].parameters["width"] == 640
    assert specs["camera_node"].parameters["height"] == 180  # overlay: rover.yaml still applies
    assert specs["behavior_node"].parameters["model_path"] == "models/sim_demo/fsq"  # backend file still applies
    # launch arguments win over the user's file
    specs = {s.name: s for s in describe(backend="npu", config=mine, policy_model="/opt/car/act_v2",
                                         behavior_model="/opt/car/fsq")}
    assert specs["policy_node"].parameters["model_path"] == "/opt/car/act_v2"
    assert specs["policy_node"].parameters["backend"] == "onnxruntime"  # the user's file beat npu.yaml
    assert specs["behavior_node"].parameters["model_path"] == "/opt/car/fsq"
    assert specs["behavior_node"].parameters["backend"] == "hailo"


def test_unknown_parameter_names_the_node_key_and_closest_match(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("pwm_bridge_node:\n  ros__parameters:\n    comand_timeout: 0.3\n")
    with pytest.raises(GraphConfigError, match=r"pwm_bridge_node has no parameter 'comand_timeout'; "
                                                r"did you mean 'command_timeout'\?") as err:
        describe(config=typo)
    assert str(typo) in str(err.value)
    with pytest.raises(GraphConfigError, match=r"policy_node has no parameter 'xyz_unrelated'$"):
        describe(overrides={"policy_node": {"xyz_unrelated": 1}})
    with pytest.raises(GraphConfigError, match="did you mean 'n_action_steps'"):
        describe(overrides={"policy_node": {"n_actions_steps": 4}})
    with pytest.raises(GraphConfigError, match=r"unknown nodes \['pwm_bridge'\]; did you mean 'pwm_bridge_node'\?"):
        describe(overrides={"pwm_bridge": {"command_timeout": 0.3}})


def test_empty_config_file_warns_and_changes_nothing(tmp_path):
    from edge_inference.ros.graph import GraphConfigWarning
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.warns(GraphConfigWarning, match="empty"):
        specs = describe(config=empty)
    assert [s.parameters for s in specs] == [s.parameters for s in describe()]


def test_preflight_names_each_missing_model_file_and_the_command_that_makes_it(tmp_path):
    from edge_inference.ros.graph import preflight
    preflight(describe(backend="cpu"))  # the shipped int8 ONNX models are there
    with pytest.raises(GraphConfigError) as err:
        preflight(describe(backend="npu"))
    lines = str(err.value).splitlines()
    assert lines[0] == "2 model(s) cannot load:"
    assert lines[1].strip().startswith("policy_node: models/sim_demo/policy_cnn has no model.hef / model.hef.json")
    from edge_inference.core.resources import resolve_model_path
    assert f"edge-inference hailo-compile --model {resolve_model_path('models/sim_demo/policy_cnn')}" in lines[1]
    assert lines[2].strip().startswith("behavior_node: models/sim_demo/fsq has no model.hef")
    with pytest.raises(GraphConfigError, match=r"policy_node: model .*nowhere does not exist \(set policy_model:=DIR\)"):
        preflight(describe(backend="cpu", policy_model=str(tmp_path / "nowhere")))
    with pytest.raises(GraphConfigError, match="has no model.int8.onnx .*edge-inference quantize"):
        preflight(describe(backend="cpu", policy_model=str(tmp_path)))
    preflight(describe(overrides={"policy_node": {"backend": "heuristic", "model_path": ""},
                                  "behavior_node": {"backend": "heuristic", "model_path": ""}}, backend="npu"))


def test_external_camera_starts_no_camera_node_and_remaps_the_policy_input():
    specs = {s.name: s for s in describe(camera_source="external", camera_topic="/cam_front/image_raw")}
    assert "camera_node" not in specs
    assert ("camera/image_raw", "/cam_front/image_raw") in specs["policy_node"].remappings
    assert ("camera/camera_info", "/cam_front/camera_info") in specs["policy_node"].remappings
    assert specs["policy_node"].node_kwargs()["cli_args"][:3] == ["--ros-args", "-r",
                                                                   "camera/image_raw:=/cam_front/image_raw"]
    default = {s.name: s for s in describe(camera_source="external")}
    assert ("camera/image_raw", "/camera/image_raw") in default["policy_node"].remappings
    assert describe()[0].remappings == ()  # no camera_topic: nothing remapped


def test_namespace_and_enclaves_reach_every_node():
    specs = describe(namespace="car1", enclave_root="/edge_inference")
    assert {s.namespace for s in specs} == {"/car1"}
    assert all(s.node_kwargs()["namespace"] == "/car1" for s in specs)
    assert [s.ros_arguments for s in specs] == [["--enclave", f"/edge_inference/{s.name}"] for s in specs]
    plain = describe()
    assert all(s.namespace == "" and s.ros_arguments == [] and s.node_kwargs() == {} for s in plain)
    with pytest.raises(GraphConfigError, match="namespace"):
        describe(namespace="2cars")
    with pytest.raises(GraphConfigError, match="enclave_root"):
        describe(enclave_root="edge_inference")


def test_security_environment_and_record_command():
    from edge_inference.ros.graph import record_command, security_environment
    env = security_environment("/keys")
    assert env == {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce", "ROS_SECURITY_KEYSTORE": "/keys"}
    assert "ROS_SECURITY_KEYSTORE" not in security_environment()
    assert record_command() == ["record"]
    with pytest.raises(GraphConfigError, match="namespace"):
        record_command("car1")
