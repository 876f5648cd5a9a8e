"""PolicyNode over real DDS: control rate independent of inference time, enable service, state input, faults."""
from __future__ import annotations

import array
import os
import time

import numpy as np
import pytest
from dds_harness import NodeHarness

NS = 1_000_000_000


class SlowRunner:
    """Test-only policy with the runner interface: a real model stand-in whose inference takes ``delay_s``."""

    backend_name = "test-slow"
    model_hash = "test-slow"

    def __init__(self, delay_s: float = 0.1, chunk_size: int = 32, dt: float = 1.0 / 30.0, value: float = 0.25):
        self.delay_s, self.chunk_size, self.dt, self.value = delay_s, chunk_size, dt, value
        self.action_dim = 2
        self.action_names = ["steering", "throttle"]
        self.states: list[np.ndarray] = []
        self.calls = 0

    def predict(self, image_rgb: np.ndarray, state: np.ndarray) -> np.ndarray:
        assert image_rgb.ndim == 3 and image_rgb.shape[2] == 3 and image_rgb.dtype == np.uint8
        self.calls += 1
        self.states.append(np.array(state))
        time.sleep(self.delay_s)
        return np.tile(np.array([[self.value, 0.4]], np.float32), (self.chunk_size, 1))


class NanRunner(SlowRunner):
    def predict(self, image_rgb, state):
        out = super().predict(image_rgb, state)
        out[5, 0] = np.nan
        return out


def make_image(stamp, width=64, height=48, encoding="rgb8"):
    from sensor_msgs.msg import Image
    msg = Image()
    msg.header.stamp = stamp
    msg.height, msg.width, msg.encoding, msg.step = height, width, encoding, width * 3
    msg.data = array.array("B", bytes(width * height * 3))  # array: no per-byte Python checks
    return msg


class Harness(NodeHarness):
    """PolicyNode with a given runner; the probe is a 30 Hz camera and records every output."""

    def __init__(self, ctx, runner, **params):
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image

        from edge_inference.ros.nodes.policy_node import PolicyNode
        from edge_inference.ros.qos import reliable_qos, sensor_qos
        from edge_inference_msgs.msg import ActionChunk, InferenceStats, VehicleCommand, VehicleState

        overrides = [Parameter(k, value=v) for k, v in params.items()]
        super().__init__(ctx, PolicyNode(runner_factory=lambda cfg, dt: runner, context=ctx,
                                         parameter_overrides=overrides), "policy_probe")
        self.commands: list[tuple[float, object]] = []  # (receive time, VehicleCommand)
        self.chunks, self.stats = [], []
        self.probe.create_subscription(VehicleCommand, "vehicle/command",
                                       lambda m: self.commands.append((time.monotonic(), m)), reliable_qos())
        self.probe.create_subscription(ActionChunk, "policy/action_chunk", self.chunks.append, reliable_qos())
        self.probe.create_subscription(InferenceStats, "policy/stats", self.stats.append, reliable_qos())
        self.pub_image = self.probe.create_publisher(Image, "camera/image_raw", sensor_qos())
        self.pub_state = self.probe.create_publisher(VehicleState, "vehicle/state", reliable_qos())
        self.probe.create_timer(1.0 / 30.0, self._publish_frame)
        self.VehicleCommand, self.VehicleState = VehicleCommand, VehicleState
        self.encoding = "rgb8"
        self.start()

    def _publish_frame(self):
        self.pub_image.publish(make_image(self.probe.get_clock().now().to_msg(), encoding=self.encoding))


def command_window(h: Harness, runner: SlowRunner, seconds: float) -> dict:
    """Receive times of the commands of the next ``seconds``: rate, gaps, and inferences meanwhile."""
    start, calls_before = len(h.commands), runner.calls
    time.sleep(seconds)
    window = h.commands[start:]
    times = np.array([t for t, _ in window])
    gaps_ms = np.diff(times) * 1e3
    return {"window": window, "rate": (len(times) - 1) / (times[-1] - times[0]), "gaps_ms": gaps_ms,
            "p99": float(np.percentile(gaps_ms, 99)), "calls": runner.calls - calls_before}


@pytest.mark.timeout(90)
def test_commands_keep_30hz_while_inference_takes_100ms(ros_context):
    """Done-when: ~100 ms inference, commands at 30 Hz, p99 inter-command gap <= 40 ms over 10 s."""
    runner = SlowRunner(delay_s=0.1)
    # ensemble mode asks for a chunk all the time: the worker is busy 100% of the time
    h = Harness(ros_context, runner, enabled=True, mode="ensemble", control_rate=30.0)
    try:
        assert h.wait_for(lambda: len(h.chunks) >= 2, 10.0), "no action chunks from the policy node"
        m = command_window(h, runner, 10.0)
        load = os.getloadavg()[0]
        if m["p99"] > 40.0 and load > os.cpu_count():
            # Other jobs hold every core of this shared machine: the OS, not the node, delays ticks.
            # A second window still fails a node that blocks its timer (gaps of ~100 ms every time).
            print(f"p99 {m['p99']:.1f} ms with load average {load:.1f} > {os.cpu_count()} cores: measuring again")
            m = command_window(h, runner, 10.0)
    finally:
        h.close()
    gaps_ms = m["gaps_ms"]
    print(f"commands: {len(m['window'])} = {m['rate']:.2f} Hz, gap p50 {np.median(gaps_ms):.1f} ms "
          f"p99 {m['p99']:.1f} ms max {gaps_ms.max():.1f} ms; inferences {m['calls']}")
    assert 28.5 <= m["rate"] <= 31.5
    assert m["p99"] <= 40.0, f"p99 inter-command gap {m['p99']:.1f} ms"
    sources = [cmd.source for _, cmd in m["window"]]
    assert sources.count(h.VehicleCommand.SOURCE_POLICY) >= 0.9 * len(sources)
    # ~10 inferences per second at 100 ms each, so most of the 30 Hz frames were dropped, and counted
    assert 50 <= m["calls"] <= 101
    assert h.stats and h.stats[-1].dropped_frames > 150
    assert all(c.latency_ms >= 100.0 and c.inference_latency_ms >= 99.0 for c in h.chunks)
    assert all(c.horizon == 32 and c.action_dim == 2 and len(c.actions) == 64 for c in h.chunks)


@pytest.mark.timeout(60)
def test_enable_service_and_vehicle_state_input(ros_context):
    runner = SlowRunner(delay_s=0.01, value=-0.3)
    h = Harness(ros_context, runner, enabled=False, mode="queue")
    neutral, policy = h.VehicleCommand.SOURCE_NEUTRAL, h.VehicleCommand.SOURCE_POLICY
    try:
        assert h.wait_for(lambda: len(h.commands) >= 15, 10.0)
        assert all(m.source == neutral and m.steering == 0.0 and m.throttle == 0.0 for _, m in h.commands)
        assert runner.calls == 0  # disabled: no inference at all
        state = h.VehicleState(steering=0.125, throttle=-0.5)
        h.pub_state.publish(state)
        time.sleep(0.3)
        h.call_set_bool("policy/enable", True)
        assert h.wait_for(lambda: any(m.source == policy for _, m in h.commands), 5.0)
        got = next(m for _, m in h.commands if m.source == policy)
        assert got.steering == pytest.approx(-0.3) and got.throttle == pytest.approx(0.4)
        np.testing.assert_allclose(runner.states[0], [0.125, -0.5])  # ACT state = applied steering/throttle
        # the command carries the stamp of the image its chunk came from
        assert any(got.header.stamp == c.header.stamp for c in h.chunks)
        h.call_set_bool("policy/enable", False)
        n = len(h.commands)
        assert h.wait_for(lambda: len(h.commands) >= n + 10, 5.0)
        assert all(m.source == neutral for _, m in h.commands[n + 2:])
    finally:
        h.close()


@pytest.mark.timeout(60)
def test_nan_model_output_gives_neutral_commands(ros_context):
    runner = NanRunner(delay_s=0.01)
    h = Harness(ros_context, runner, enabled=True, mode="ensemble")
    try:
        assert h.wait_for(lambda: runner.calls >= 5 and len(h.commands) >= 30, 10.0)
        assert h.node.scheduler.stats.chunks_rejected_non_finite >= 5
    finally:
        h.close()
    assert all(m.source == h.VehicleCommand.SOURCE_NEUTRAL for _, m in h.commands)
    assert all(np.isfinite(m.steering) and m.steering == 0.0 for _, m in h.commands)


class FlakyRunner(SlowRunner):
    """Raises on every other call, like a backend hitting a bad input now and then."""

    def predict(self, image_rgb, state):
        out = super().predict(image_rgb, state)
        if self.calls % 2 == 0:
            raise RuntimeError("backend failed")
        return out


@pytest.mark.timeout(60)
def test_model_exception_is_reported_and_goes_neutral_until_the_next_good_chunk(ros_context):
    runner = FlakyRunner(delay_s=0.05)
    h = Harness(ros_context, runner, enabled=True, mode="async")
    try:
        assert h.wait_for(lambda: runner.calls >= 6, 10.0)
        assert h.node.inference_errors >= 2
        time.sleep(0.5)
    finally:
        h.close()
    sources = {m.source for _, m in h.commands}
    assert sources == {h.VehicleCommand.SOURCE_NEUTRAL, h.VehicleCommand.SOURCE_POLICY}  # recovers each time
    good = runner.calls - h.node.inference_errors
    assert good - 1 <= len(h.chunks) <= good  # failed inferences publish no chunk (one may be in flight at close)


@pytest.mark.timeout(60)
def test_unsupported_image_encoding_is_reported_and_commands_stay_neutral(ros_context):
    runner = SlowRunner(delay_s=0.0)
    h = Harness(ros_context, runner, enabled=True, mode="queue")
    h.encoding = "yuv422"
    try:
        assert h.wait_for(lambda: h.node.inference_errors >= 3 and len(h.commands) >= 10, 10.0)
        assert "yuv422" in h.node.last_error and runner.calls == 0
    finally:
        h.close()
    assert all(m.source == h.VehicleCommand.SOURCE_NEUTRAL for _, m in h.commands)


def test_real_backend_without_model_path_is_a_clear_error(ros_context):
    from rclpy.parameter import Parameter

    from edge_inference.backends import BackendError
    from edge_inference.ros.nodes.policy_node import PolicyNode
    with pytest.raises(BackendError, match="needs model_path"):
        PolicyNode(context=ros_context, parameter_overrides=[Parameter("backend", value="onnxruntime-int8"),
                                                             Parameter("model_path", value="")])


# -- what the checkpoint wants (issue 11) ----------------------------------------------------------------
def test_state_layout_by_name_or_size():
    from edge_inference.ros.nodes.policy_node import PolicyStateError, state_layout
    assert state_layout(2) == [0, 1]
    assert state_layout(2, ["throttle", "steering"]) == [1, 0]
    with pytest.raises(PolicyStateError, match=r"wants an observation.state of 3 values; this node provides 2"):
        state_layout(3)
    with pytest.raises(PolicyStateError, match=r"wants observation.state \['steering', 'speed'\].*no \['speed'\]"):
        state_layout(2, ["steering", "speed"])


class MetaRunner(SlowRunner):
    """A runner whose model metadata says what LeRobot's checkpoint said."""

    def __init__(self, metadata: dict, state_dim: int = 2, **kw):
        super().__init__(delay_s=0.0, **kw)
        self.metadata, self.state_dim = metadata, state_dim


def test_policy_refuses_a_state_it_cannot_provide_at_startup(ros_context):
    from edge_inference.ros.nodes.policy_node import PolicyNode, PolicyStateError
    with pytest.raises(PolicyStateError, match="wants an observation.state of 6 values"):
        PolicyNode(runner_factory=lambda cfg, dt: MetaRunner({}, state_dim=6), context=ros_context)


def test_checkpoint_chunk_execution_is_the_default_and_user_parameters_win(ros_context):
    from rclpy.parameter import Parameter

    from edge_inference.ros.nodes.policy_node import PolicyNode
    node = PolicyNode(runner_factory=lambda cfg, dt: MetaRunner({"n_action_steps": 5}), context=ros_context)
    try:
        assert node.scheduler.config.n_action_steps == 5 and node.get_parameter("n_action_steps").value == 5
    finally:
        node.destroy_node()
    node = PolicyNode(runner_factory=lambda cfg, dt: MetaRunner({"n_action_steps": 5}), context=ros_context,
                      parameter_overrides=[Parameter("n_action_steps", value=3)])
    try:
        assert node.scheduler.config.n_action_steps == 3  # the user's parameter wins
    finally:
        node.destroy_node()
    node = PolicyNode(runner_factory=lambda cfg, dt: MetaRunner({"n_action_steps": 1, "temporal_ensemble_coeff": 0.02}),
                      context=ros_context)
    try:
        assert node.scheduler.config.mode == "ensemble" and node.scheduler.config.ensemble_coeff == 0.02
        assert node.get_parameter("mode").value == "ensemble"
    finally:
        node.destroy_node()


def test_policy_fps_parameter_sets_the_chunk_time_step(ros_context):
    from rclpy.parameter import Parameter

    from edge_inference.ros.nodes.policy_node import PolicyNode
    node = PolicyNode(runner_factory=lambda cfg, dt: MetaRunner({"fps_source": "default"}, dt=0.05),
                      context=ros_context, parameter_overrides=[Parameter("policy_fps", value=10.0)])
    try:
        assert node.runner.dt == pytest.approx(0.1)
    finally:
        node.destroy_node()


def test_node_executable_reports_a_startup_failure_in_one_line(tmp_path):
    """As `ros2 launch` runs it: a model that cannot load is one FATAL line and exit 1, not a traceback."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "edge_inference.ros.nodes.policy_node", "--ros-args",
                           "-p", "backend:=onnxruntime", "-p", f"model_path:={tmp_path / 'missing'}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot start: model path" in lines[0] and "missing" in lines[0], lines
