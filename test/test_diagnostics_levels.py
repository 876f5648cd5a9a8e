"""Diagnostics over real DDS: levels flip OK -> WARN -> ERROR as a rate drops or latency grows."""
import pytest
from conftest import spin_until
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from edge_inference.ros.diagnostics import ERROR, OK, WARN
from edge_inference.ros.qos import reliable_qos


@pytest.fixture
def monitored(ros_context):
    """A monitor_node with fast diagnostics, a probe publishing its inputs, and the /diagnostics it sees."""
    from diagnostic_msgs.msg import DiagnosticArray

    from edge_inference.ros.nodes.monitor_node import MonitorNode
    mon = MonitorNode(context=ros_context, parameter_overrides=[
        Parameter("expected_command_hz", value=30.0), Parameter("rate_tolerance", value=0.3),
        Parameter("rate_window_s", value=0.5), Parameter("diagnostic_period_s", value=0.1),
        Parameter("latency_warn_ms", value=100.0), Parameter("latency_error_ms", value=250.0)])
    probe = Node("diag_probe", context=ros_context)
    latest = {}

    def on_diag(msg):
        for s in msg.status:
            latest[s.name] = s
    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable_qos(50))
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(mon)
    ex.add_node(probe)
    yield mon, probe, ex, latest
    ex.shutdown()
    probe.destroy_node()
    mon.destroy_node()


def _level(latest, name):
    s = latest.get(name)
    return None if s is None else s.level[0]


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def _wait_level(ex, latest, name, level, timeout=8.0, when=lambda status: True):
    """Spin until the status ``name`` has ``level`` (and satisfies ``when``); return it."""
    ok = spin_until(ex, lambda: _level(latest, name) == level and when(latest[name]), timeout)
    s = latest.get(name)
    assert ok, f"{name}: wanted level {level}, last {None if s is None else (s.level[0], s.message)}"
    return s


def test_command_rate_ok_then_warn_when_it_drops_then_error_when_it_stops(monitored):
    from edge_inference_msgs.msg import VehicleCommand
    mon, probe, ex, latest = monitored
    pub = probe.create_publisher(VehicleCommand, "vehicle/command", reliable_qos(10))
    period = {"s": 1 / 30}
    last = [0.0]

    def maybe_publish():
        now = probe.get_clock().now().nanoseconds / 1e9
        if period["s"] and now - last[0] >= period["s"]:
            pub.publish(VehicleCommand(steering=0.0, throttle=0.2, source=VehicleCommand.SOURCE_POLICY))
            last[0] = now
    probe.create_timer(0.005, maybe_publish)
    name = "monitor_node: vehicle command rate"
    s = _wait_level(ex, latest, name, OK, when=lambda st: float(_values(st)["rate_hz"]) > 0)
    assert 20.0 < float(_values(s)["rate_hz"]) < 40.0
    period["s"] = 1 / 10                      # 10 Hz: below 30 Hz by more than 30 %
    s = _wait_level(ex, latest, name, WARN)
    assert "below expected" in s.message
    period["s"] = 0                           # publisher stops
    s = _wait_level(ex, latest, name, ERROR)
    assert "no events" in s.message


def test_chunk_latency_ok_then_warn_then_error_at_parameter_thresholds(monitored):
    from edge_inference_msgs.msg import ActionChunk
    mon, probe, ex, latest = monitored
    pub = probe.create_publisher(ActionChunk, "policy/action_chunk", reliable_qos(100))
    assert spin_until(ex, lambda: pub.get_subscription_count() > 0, 10)
    name = "monitor_node: chunk latency"

    def send(latency_ms, n=30):
        for _ in range(n):
            pub.publish(ActionChunk(horizon=1, action_dim=2, dt=0.05, actions=[0.0, 0.1], latency_ms=latency_ms))
            ex.spin_once(timeout_sec=0.0)

    send(20.0)
    s = _wait_level(ex, latest, name, OK, when=lambda st: _values(st)["latency_ms_p50"] != "n/a")
    assert float(_values(s)["latency_ms_p95"]) == pytest.approx(20.0)
    send(150.0)                               # p95 150 ms: over the 100 ms warn threshold
    s = _wait_level(ex, latest, name, WARN)
    assert "> 100 ms" in s.message
    send(400.0)                               # over the 250 ms error threshold
    s = _wait_level(ex, latest, name, ERROR)
    assert "> 250 ms" in s.message


class DelayedRunner:
    """The heuristic policy with a settable model time (s): the latency the diagnostics must judge."""

    def __init__(self, dt):
        from edge_inference.backends.heuristic import HeuristicPolicyRunner
        self.inner = HeuristicPolicyRunner(chunk_size=8, dt=dt)
        self.delay_s = 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict(self, image_rgb, state):
        import time
        time.sleep(self.delay_s)
        return self.inner.predict(image_rgb, state)


@pytest.mark.timeout(90)
def test_policy_node_latency_levels_follow_its_threshold_parameters(ros_context):
    import array

    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from edge_inference.ros.nodes.policy_node import PolicyNode
    from edge_inference.ros.qos import sensor_qos
    runners = []

    def factory(cfg, dt):
        runners.append(DelayedRunner(dt))
        return runners[-1]
    node = PolicyNode(runner_factory=factory, context=ros_context, parameter_overrides=[
        Parameter("enabled", value=True), Parameter("mode", value="ensemble"),
        Parameter("latency_warn_ms", value=60.0), Parameter("latency_error_ms", value=150.0)])
    probe = Node("policy_diag_probe", context=ros_context)
    latest = {}
    probe.create_subscription(DiagnosticArray, "/diagnostics",
                              lambda m: latest.update({s.name: s for s in m.status}), reliable_qos(50))
    pub = probe.create_publisher(Image, "camera/image_raw", sensor_qos())

    def frame():
        msg = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
        msg.data = array.array("B", bytes(64 * 48 * 3))
        msg.header.stamp = probe.get_clock().now().to_msg()
        pub.publish(msg)
    probe.create_timer(1 / 30, frame)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    name = "policy_node: image to chunk latency"
    try:
        s = _wait_level(ex, latest, name, OK, timeout=15, when=lambda st: _values(st)["latency_ms_p50"] != "n/a")
        assert float(_values(s)["latency_ms_p95"]) < 60.0
        policy = _values(latest["policy_node: policy"])
        assert policy["backend"] == "heuristic" and policy["model_hash"] == runners[0].inner.model_hash
        runners[0].delay_s = 0.09             # ~90 ms model time: over warn (60), under error (150)
        s = _wait_level(ex, latest, name, WARN, timeout=20)
        assert "> 60 ms" in s.message
        runners[0].delay_s = 0.2              # over the error threshold
        s = _wait_level(ex, latest, name, ERROR, timeout=20)
        assert "> 150 ms" in s.message
    finally:
        ex.shutdown()
        probe.destroy_node()
        node.destroy_node()


def test_behavior_stats_count_the_imu_samples_the_windower_dropped(ros_context):
    from sensor_msgs.msg import Imu

    from edge_inference.ros.nodes.behavior_node import BehaviorNode
    from edge_inference.ros.qos import sensor_qos
    from edge_inference.ros.stamps import ns_to_stamp
    from edge_inference_msgs.msg import InferenceStats
    node = BehaviorNode(context=ros_context, parameter_overrides=[Parameter("stride", value=10)])
    probe = Node("behavior_stats_probe", context=ros_context)
    stats = []
    probe.create_subscription(InferenceStats, "behavior/stats", stats.append, reliable_qos(50))
    pub = probe.create_publisher(Imu, "imu/data_raw", sensor_qos(10))
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0, 10)
        t0 = probe.get_clock().now().nanoseconds - 4_000_000_000
        duplicates = 0
        for i in range(200):                  # 4 s at 50 Hz, every 20th sample sent twice
            for _ in range(2 if i % 20 == 5 else 1):
                m = Imu()
                m.header.stamp = ns_to_stamp(t0 + i * 20_000_000)
                m.linear_acceleration.z = 9.81
                pub.publish(m)
                ex.spin_once(timeout_sec=0.0)
                ex.spin_once(timeout_sec=0.0)
            duplicates += i % 20 == 5
        assert spin_until(ex, lambda: stats and stats[-1].dropped_frames > 0, 5), "no behavior/stats with drops"
        assert stats[-1].dropped_frames <= duplicates
        assert stats[-1].dropped_frames == node.windower.stats.duplicates + node.windower.stats.late_samples
    finally:
        ex.shutdown()
        probe.destroy_node()
        node.destroy_node()
