"""`ros2 param set` means what it says (issue 11): every parameter either takes effect when set
at run time or is read-only, checked over DDS through the nodes' parameter services the way
`ros2 param set` reaches them (rclpy's AsyncParameterClient)."""
from __future__ import annotations

import time

import pytest
from dds_harness import NodeHarness
from rclpy.parameter import Parameter, parameter_value_to_python

BUILTIN = {"use_sim_time", "start_type_description_service"}


def _nodes(ctx, tmp_path):
    """Every node class, configured to start cheaply (stand-in models, no serial device, topic-driven sim)."""
    from edge_inference.ros.nodes.behavior_node import BehaviorNode
    from edge_inference.ros.nodes.camera_node import CameraNode
    from edge_inference.ros.nodes.expert_node import ExpertNode
    from edge_inference.ros.nodes.monitor_node import MonitorNode
    from edge_inference.ros.nodes.policy_node import PolicyNode
    from edge_inference.ros.nodes.pwm_bridge_node import PwmBridgeNode
    from edge_inference.ros.nodes.sim_node import SimNode
    return [
        CameraNode(context=ctx),
        PolicyNode(context=ctx),
        BehaviorNode(context=ctx),
        PwmBridgeNode(context=ctx, parameter_overrides=[Parameter("serial_port", value=str(tmp_path / "none"))]),
        SimNode(context=ctx, parameter_overrides=[Parameter("command_source", value="topic")]),
        ExpertNode(context=ctx),
        MonitorNode(context=ctx, parameter_overrides=[Parameter("publish_static_tf", value=False)]),
    ]


def test_every_parameter_of_every_node_is_applied_at_run_time_or_read_only(ros_context, tmp_path):
    nodes = _nodes(ros_context, tmp_path)
    try:
        for node in nodes:
            names = [n for n in node._parameters if n not in BUILTIN and not n.startswith("qos_overrides.")]
            live = node.live_params.live_names
            assert live <= set(names), f"{node.get_name()}: live names not declared {live - set(names)}"
            for name, desc in zip(names, node.describe_parameters(names)):
                assert desc.read_only != (name in live), f"{node.get_name()}.{name}: read_only={desc.read_only}"
    finally:
        for node in nodes:
            node.destroy_node()


@pytest.fixture
def bridge(ros_context, tmp_path):
    from edge_inference.ros.nodes.pwm_bridge_node import PwmBridgeNode
    node = PwmBridgeNode(context=ros_context, parameter_overrides=[
        Parameter("serial_port", value=str(tmp_path / "no_board")), Parameter("command_timeout", value=0.2)])
    h = NodeHarness(ros_context, node, "param_probe")
    h.start()
    yield h
    h.close()


def _client(h: NodeHarness, node_name: str):
    from rclpy.parameter_client import AsyncParameterClient
    client = AsyncParameterClient(h.probe, node_name)
    assert client.wait_for_services(timeout_sec=10.0), f"no parameter services on {node_name}"
    return client


def _set(h: NodeHarness, client, *params: Parameter):
    """One `ros2 param set` call: the SetParameters results, in order."""
    future = client.set_parameters(list(params))
    assert h.wait_for(future.done, 10.0), "no answer from set_parameters"
    return future.result().results


def _get(h: NodeHarness, client, name: str):
    future = client.get_parameters([name])
    assert h.wait_for(future.done, 10.0)
    return parameter_value_to_python(future.result().values[0])


def test_command_timeout_set_over_dds_changes_the_bridge_watchdog(bridge):
    client = _client(bridge, "pwm_bridge_node")
    core = bridge.node.core
    t0 = time.monotonic()
    core.on_command(0.3, 0.3, t0)
    assert core.output(t0 + 0.5).reason == "timeout"  # 0.2 s watchdog
    (result,) = _set(bridge, client, Parameter("command_timeout", value=1.0))
    assert result.successful, result.reason
    assert core.command_timeout == 1.0 and bridge.node.cfg.command_timeout == 1.0
    assert core.output(t0 + 0.5).reason != "timeout"  # the same command is now within the watchdog
    assert _get(bridge, client, "command_timeout") == 1.0


def test_invalid_and_read_only_parameters_are_refused_with_a_reason(bridge):
    client = _client(bridge, "pwm_bridge_node")
    (out_of_range,) = _set(bridge, client, Parameter("command_timeout", value=10.0))
    assert not out_of_range.successful and out_of_range.reason
    (wrong_type,) = _set(bridge, client, Parameter("command_timeout", value="fast"))
    assert not wrong_type.successful and wrong_type.reason
    (read_only,) = _set(bridge, client, Parameter("serial_port", value="/dev/ttyACM0"))
    assert not read_only.successful and "read-only" in read_only.reason
    assert bridge.node.core.command_timeout == 0.2 and bridge.node.cfg.serial_port.endswith("no_board")


def test_policy_enabled_parameter_and_enable_service_stay_consistent(ros_context):
    """`ros2 param set /policy_node enabled false` disables the car; policy/enable updates the parameter."""
    from edge_inference.ros.nodes.policy_node import PolicyNode
    node = PolicyNode(context=ros_context, parameter_overrides=[Parameter("enabled", value=True)])
    h = NodeHarness(ros_context, node, "policy_param_probe")
    h.start()
    try:
        client = _client(h, "policy_node")
        assert node.scheduler.enabled
        (result,) = _set(h, client, Parameter("enabled", value=False))
        assert result.successful and not node.scheduler.enabled
        h.call_set_bool("policy/enable", True)
        assert node.scheduler.enabled and _get(h, client, "enabled") is True
        h.call_set_bool("policy/enable", False)
        assert not node.scheduler.enabled and _get(h, client, "enabled") is False
        # scheduler parameters are validated by SchedulerConfig and applied to the running scheduler
        (bad_steps,) = _set(h, client, Parameter("n_action_steps", value=0))
        assert not bad_steps.successful and "n_action_steps" in bad_steps.reason
        (bad_mode,) = _set(h, client, Parameter("mode", value="teleport"))
        assert not bad_mode.successful and "mode" in bad_mode.reason
        (steps,) = _set(h, client, Parameter("n_action_steps", value=4))
        assert steps.successful and node.scheduler.config.n_action_steps == 4
        (threads,) = _set(h, client, Parameter("threads", value=4))  # the runner is built: restart to change
        assert not threads.successful and "read-only" in threads.reason
    finally:
        h.close()


def test_behavior_enabled_parameter_and_enable_service_stay_consistent(ros_context):
    from edge_inference.ros.nodes.behavior_node import BehaviorNode
    node = BehaviorNode(context=ros_context)
    h = NodeHarness(ros_context, node, "behavior_param_probe")
    h.start()
    try:
        client = _client(h, "behavior_node")
        (result,) = _set(h, client, Parameter("enabled", value=False))
        assert result.successful and node.enabled is False
        h.call_set_bool("behavior/enable", True)
        assert node.enabled is True and _get(h, client, "enabled") is True
    finally:
        h.close()
