"""Parameter declaration from dataclasses and the diagnostics tasks."""
from dataclasses import dataclass

import pytest
from rclpy.parameter import Parameter

from edge_inference.core.config_fields import ParameterError, config_from_dict, param
from edge_inference.ros.diagnostics import (
    ERROR,
    NO_MESSAGE,
    OK,
    STARTING,
    WARN,
    FrequencyTask,
    LatencyTask,
    StatusBuilder,
    Updater,
)
from edge_inference.ros.params import declare_params


@dataclass
class DemoConfig:
    rate: float = param(30.0, "control rate, Hz", range=(1.0, 100.0))
    mode: str = param("queue", "execution mode", choices=("queue", "ensemble"))
    names: list[str] = param(["steering", "throttle"], "action names")
    empty: list[float] = param([], "optional list")
    enabled: bool = param(False, "start enabled")


def test_declare_params_uses_descriptors_and_overrides(ros_context):
    from rclpy.node import Node
    node = Node("p", context=ros_context, parameter_overrides=[Parameter("mode", value="ensemble"),
                                                                Parameter("empty", value=[1.5])])
    cfg = declare_params(node, DemoConfig)
    assert (cfg.rate, cfg.mode, cfg.names, cfg.empty, cfg.enabled) == (30.0, "ensemble", ["steering", "throttle"], [1.5], False)
    d = node.describe_parameter("rate")
    assert d.description == "control rate, Hz" and d.floating_point_range[0].to_value == 100.0
    node.destroy_node()


def test_bad_choice_is_rejected(ros_context):
    from rclpy.node import Node
    node = Node("q", context=ros_context, parameter_overrides=[Parameter("mode", value="teleport")])
    with pytest.raises(ParameterError, match="teleport"):
        declare_params(node, DemoConfig)
    node.destroy_node()
    with pytest.raises(ParameterError, match="unknown parameters"):
        config_from_dict(DemoConfig, {"rat": 3.0})


def test_frequency_task_levels():
    t = [0.0]
    task = FrequencyTask(expected_hz=10.0, tolerance=0.2, window_s=1.0, clock=lambda: t[0])
    stat = StatusBuilder("x", "hw")
    task(stat)
    assert stat.level == ERROR
    for i in range(10):
        t[0] = i * 0.1
        task.tick()
    t[0] = 0.95
    stat = StatusBuilder("x", "hw")
    task(stat)
    assert stat.level == OK
    t[0] = 1.5  # half the ticks aged out -> 5 Hz
    stat = StatusBuilder("x", "hw")
    task(stat)
    assert stat.level == WARN and "below" in stat.message


def test_latency_task_thresholds():
    task = LatencyTask(warn_ms=10.0, error_ms=50.0)
    for ms in [1.0] * 50:
        task.record(ms)
    stat = StatusBuilder("x", "hw")
    task(stat)
    assert stat.level == OK
    for ms in [60.0] * 20:
        task.record(ms)
    stat = StatusBuilder("x", "hw")
    task(stat)
    assert stat.level == ERROR and dict(stat.values)["latency_ms_p95"] == "60.000"


def test_updater_publishes_array_and_reports_broken_task(ros_context):
    from conftest import spin_until
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    node = Node("diag_src", context=ros_context)
    upd = Updater(node, "hw0", period_s=0.1)
    upd.add("ok", lambda s: s.summary(OK, "fine"))
    upd.add("broken", lambda s: 1 / 0)
    probe = Node("probe", context=ros_context)
    got = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    assert spin_until(ex, lambda: any(len(a.status) == 2 for a in got), 10.0)
    names = {s.name: s for s in next(a for a in got if len(a.status) == 2).status}
    assert names["diag_src: ok"].level == bytes([OK])
    assert names["diag_src: broken"].level == bytes([ERROR]) and "ZeroDivision" in names["diag_src: broken"].message
    ex.shutdown()
    node.destroy_node()
    probe.destroy_node()


@pytest.mark.parametrize("module, overrides", [
    ("camera_node", {"camera_source": "synthetic"}),
    ("policy_node", {}),
    ("behavior_node", {}),
    ("pwm_bridge_node", {"serial_port": "/nonexistent/ttyX", "reconnect_initial_s": 5.0}),
    ("sim_node", {}),
])
def test_rate_tolerance_parameter_sets_every_rate_diagnostic(ros_context, module, overrides):
    """OK/WARN thresholds come from parameters: ``rate_tolerance`` reaches the node's rate
    check, which then warns at exactly that deviation."""
    import importlib

    mod = importlib.import_module(f"edge_inference.ros.nodes.{module}")
    node_class = next(v for k, v in vars(mod).items() if k.endswith("Node") and isinstance(v, type)
                      and v.__module__ == mod.__name__)
    params = [Parameter(k, value=v) for k, v in {**overrides, "rate_tolerance": 0.5}.items()]
    node = node_class(context=ros_context, parameter_overrides=params)
    try:
        tasks = [v for v in vars(node).values() if isinstance(v, FrequencyTask)]
        assert tasks, f"{module} has no rate diagnostic"
        for task in tasks:
            assert task.tolerance == 0.5
            now = [0.0]
            task.clock = lambda: now[0]  # nothing spins: only these ticks count
            for fraction, level in ((0.55, OK), (0.45, WARN)):  # OK within 50 % (the 0.2 default would WARN)
                period, until = 1.0 / (task.expected_hz * fraction), now[0] + task.window_s * 3
                while now[0] < until:  # three windows: the previous rate has left the window
                    task.tick()
                    now[0] += period
                stat = StatusBuilder("rate", "test")
                task(stat)
                assert stat.level == level, (module, fraction, stat.message)
    finally:
        node.destroy_node()


def test_a_task_that_sets_no_summary_is_an_error_as_upstream():
    stat = StatusBuilder("x", "hw")
    assert (stat.level, stat.message) == (ERROR, NO_MESSAGE)
    stat.merge_summary(OK, "fine")  # an OK merged into a problem adds nothing
    assert (stat.level, stat.message) == (ERROR, NO_MESSAGE)


def test_merged_summary_keeps_every_non_ok_message():
    stat = StatusBuilder("x", "hw")
    stat.summary(OK, "watching")
    stat.merge_summary(WARN, "undrawable chunk")
    assert (stat.level, stat.message) == (WARN, "undrawable chunk")
    stat.merge_summary(ERROR, "overlay failed")
    stat.merge_summary(WARN, "late camera info")
    assert stat.level == ERROR and stat.message == "undrawable chunk; overlay failed; late camera info"


def test_updater_announces_added_tasks_and_force_update_publishes_now(ros_context):
    import time

    from conftest import spin_until
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    node = Node("diag_now", context=ros_context)
    upd = Updater(node, "hw0", period_s=3600.0)  # the periodic update never fires in this test
    probe = Node("probe_now", context=ros_context)
    got = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        assert spin_until(ex, lambda: upd._pub.get_subscription_count() >= 1, 10.0)
        state = {"level": OK, "message": "armed"}
        upd.add("safety", lambda s: s.summary(state["level"], state["message"]))
        assert spin_until(ex, lambda: got, 5.0)
        (status,) = got[-1].status
        assert (status.name, status.level, status.message) == ("diag_now: safety", bytes([OK]), STARTING)
        state.update(level=WARN, message="e-stop latched")
        t0 = time.monotonic()
        upd.force_update()
        assert spin_until(ex, lambda: got[-1].status[0].message == "e-stop latched", 5.0)
        assert time.monotonic() - t0 < 2.0 and got[-1].status[0].level == bytes([WARN])
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
