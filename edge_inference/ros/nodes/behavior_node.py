"""behavior_node: Imu + MagneticField -> fixed-rate windows -> behavior classifier -> BehaviorState.

The windowing (resampling, gaps, reordering, missing magnetometer) and the
probability smoothing are the pure cores in ``imu_window.py``; this node only
feeds them from the topics and publishes the results. The classifier is small
(~1-2 ms per window), so it runs inline in the IMU callback.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, MagneticField
from std_srvs.srv import SetBool

from edge_inference.backends import BACKEND_NAMES, HEURISTIC
from edge_inference.backends.heuristic import DEFAULT_BEHAVIOR_CLASSES
from edge_inference.backends.runners import create_behavior_runner  # backends import their libraries lazily
from edge_inference.core.config_fields import param
from edge_inference.core.imu_window import ImuWindower, ProbabilitySmoother, SmootherConfig, Window, WindowConfig
from edge_inference.ros.diagnostics import ERROR, OK, WARN, FrequencyTask, LatencyTask, Updater
from edge_inference.ros.params import LiveParams
from edge_inference.ros.qos import reliable_qos, sensor_qos
from edge_inference.ros.spin import destroy_on_failure, spin_node
from edge_inference.ros.stamps import ns_to_stamp, stamp_to_ns
from edge_inference_msgs.msg import BehaviorState, InferenceStats

NS_PER_MS = 1_000_000


@dataclass
class BehaviorNodeConfig:
    model_path: str = param("", "behavior model (FSQ checkpoint / ONNX / HEF); empty: heuristic rule model",
                            read_only=True)
    backend: str = param(HEURISTIC, "inference backend (heuristic: the built-in stand-in, no model)",
                         choices=BACKEND_NAMES, read_only=True)
    class_names: list[str] = param(list(DEFAULT_BEHAVIOR_CLASSES), "class names of the heuristic model",
                                   read_only=True)
    threads: int = param(1, "intra-op threads of the model backend (pin to the cores left for inference)", range=(1, 64))
    enabled: bool = param(True, "classify on start (behavior/enable toggles it)")
    imu_rate_hz: float = param(50.0, "expected IMU rate for the diagnostic, Hz (sim and HAPT: 50)", range=(1.0, 2000.0))
    latency_warn_ms: float = param(100.0, "window latency p95 above this is WARN (diagnostics), ms",
                                   range=(0.0, 10000.0), read_only=True)
    latency_error_ms: float = param(500.0, "window latency p95 above this is ERROR (diagnostics), ms",
                                    range=(0.0, 10000.0), read_only=True)
    rate_tolerance: float = param(0.3, "IMU rate deviation from imu_rate_hz before diagnostics WARN (fraction)",
                                  range=(0.0, 1.0), read_only=True)


def make_behavior_runner(cfg: BehaviorNodeConfig, window: WindowConfig):
    """The classifier behind the node: heuristic rules, or the backend registry's runner."""
    return create_behavior_runner(cfg.model_path, cfg.backend, threads=cfg.threads,
                                  heuristic={"class_names": cfg.class_names, "window_length": window.window_length,
                                             "sample_rate_hz": window.sample_rate_hz})


CONFIG_CLASSES = (BehaviorNodeConfig, WindowConfig, SmootherConfig)


class BehaviorNode(Node):
    """ROS shell around ImuWindower + ProbabilitySmoother + a behavior runner."""

    @destroy_on_failure
    def __init__(self, runner_factory=make_behavior_runner, **kwargs):
        super().__init__("behavior_node", **kwargs)
        self.live_params = LiveParams(self)  # `enabled` applies at run time; the rest are read-only
        self.live_params.declare(BehaviorNodeConfig, "cfg", live=("enabled",), apply=self._apply_config)
        window_cfg = self.live_params.declare(WindowConfig, "window_cfg")
        self.runner = runner_factory(self.cfg, window_cfg)
        window_cfg = self._match_model(window_cfg)
        self.windower = ImuWindower(window_cfg)
        self.smoother = ProbabilitySmoother(self.live_params.declare(SmootherConfig, "smoother_cfg"))
        self.enabled = self.cfg.enabled
        self.inference_errors = 0
        self.last_error = ""
        self.last_inference_failed = False
        self._window_times: list[float] = []

        self.pub_state = self.create_publisher(BehaviorState, "behavior/state", reliable_qos(10))
        self.pub_stats = self.create_publisher(InferenceStats, "behavior/stats", reliable_qos(10))
        self.create_subscription(Imu, "imu/data_raw", self._on_imu, sensor_qos(10))
        self.create_subscription(MagneticField, "imu/mag", self._on_mag, sensor_qos(10))
        self.create_service(SetBool, "behavior/enable", self._on_enable)

        self.imu_rate = FrequencyTask(self.cfg.imu_rate_hz, tolerance=self.cfg.rate_tolerance)
        self.latency = LatencyTask(warn_ms=self.cfg.latency_warn_ms, error_ms=self.cfg.latency_error_ms)
        self.diag = Updater(self, hardware_id=f"behavior:{self.runner.backend_name}")
        self.diag.add("imu rate", self.imu_rate)
        self.diag.add("magnetometer", self._mag_status)
        self.diag.add("classifier", self._classifier_status)
        self.diag.add("window latency", self.latency)

    def _match_model(self, window_cfg: WindowConfig) -> WindowConfig:
        """The model decides window length and rate; parameters that disagree are overridden loudly."""
        length, rate = int(self.runner.window_length), float(self.runner.sample_rate_hz)
        if (length, rate) != (window_cfg.window_length, window_cfg.sample_rate_hz):
            self.get_logger().warning(
                f"model expects {length} samples at {rate} Hz; overriding parameters "
                f"window_length={window_cfg.window_length} sample_rate_hz={window_cfg.sample_rate_hz}")
            window_cfg = WindowConfig(**{**vars(window_cfg), "window_length": length, "sample_rate_hz": rate})
        return window_cfg

    # -- callbacks -----------------------------------------------------------------------------
    def _on_mag(self, msg: MagneticField) -> None:
        f = msg.magnetic_field
        self.windower.add_mag(stamp_to_ns(msg.header.stamp), (f.x, f.y, f.z))

    def _on_imu(self, msg: Imu) -> None:
        self.imu_rate.tick()
        a, g = msg.linear_acceleration, msg.angular_velocity
        windows = self.windower.add_imu(stamp_to_ns(msg.header.stamp), (a.x, a.y, a.z), (g.x, g.y, g.z))
        if not self.enabled:
            return
        for window in windows:
            try:
                self._classify(window, msg.header.frame_id)
                self.last_inference_failed = False
            except Exception as exc:  # noqa: BLE001 - bad window/model output/backend failure: report, keep going
                self.inference_errors += 1
                newly_failed = not self.last_inference_failed
                self.last_inference_failed = True
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"behavior inference failed: {exc}", throttle_duration_sec=2.0)
                if newly_failed:
                    self.diag.force_update()

    def _apply_config(self, cfg: BehaviorNodeConfig, changed: set[str]) -> None:
        if "enabled" in changed:
            self.enabled = cfg.enabled
            self.smoother.reset()

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """Sets the ``enabled`` parameter, so the service and `ros2 param get` always agree."""
        result = self.set_parameters([Parameter("enabled", value=bool(request.data))])[0]
        response.success = result.successful
        response.message = (("behavior classification " + ("enabled" if request.data else "disabled"))
                            if result.successful else result.reason)
        return response

    def _classify(self, window: Window, frame_id: str) -> None:
        t0 = time.perf_counter()
        probs, code = self.runner.predict(window.data)
        t1 = time.perf_counter()
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        names = list(self.runner.class_names)
        if probs.size != len(names):
            raise ValueError(f"classifier returned {probs.size} probabilities for {len(names)} classes")
        class_id, smoothed = self.smoother.update(probs)
        msg = BehaviorState()
        msg.header.stamp = ns_to_stamp(window.stamp_ns)
        msg.header.frame_id = frame_id
        msg.class_id = class_id
        msg.label = names[class_id]
        msg.confidence = float(smoothed[class_id])
        msg.probabilities = smoothed.astype(np.float32).tolist()
        msg.class_names = names
        msg.fsq_code = int(code)
        msg.latency_ms = (self.get_clock().now().nanoseconds - window.stamp_ns) / NS_PER_MS
        t2 = time.perf_counter()
        self.pub_state.publish(msg)
        self.latency.record(msg.latency_ms)
        self._publish_stats(msg, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def _publish_stats(self, state: BehaviorState, inference_ms: float, postprocess_ms: float) -> None:
        now_wall = time.monotonic()
        self._window_times = [t for t in self._window_times if now_wall - t < 5.0] + [now_wall]
        stats = InferenceStats()
        stats.header = state.header
        stats.model = str(getattr(self.runner, "model_hash", ""))
        stats.backend = self.runner.backend_name
        stats.inference_ms = float(inference_ms)
        stats.postprocess_ms = float(postprocess_ms)
        stats.end_to_end_ms = float(state.latency_ms)
        stats.rate_hz = (len(self._window_times) - 1) / max(1e-6, now_wall - self._window_times[0])
        w = self.windower.stats  # IMU samples the windower had to drop (duplicate, late, NaN/Inf)
        stats.dropped_frames = w.duplicates + w.late_samples + w.invalid_samples
        self.pub_stats.publish(stats)

    # -- diagnostics ---------------------------------------------------------------------------
    def _mag_status(self, stat) -> None:
        s = self.windower.stats
        stat.add("mag_samples", s.mag_samples)
        stat.add("mag_missing_rows", s.mag_missing_rows)
        if self.windower.mag_missing:
            stat.summary(WARN, "no magnetometer data: mag channels are zeros")
        else:
            stat.summary(OK, "magnetometer ok")

    def _classifier_status(self, stat) -> None:
        s = self.windower.stats
        for key in ("imu_samples", "rows", "windows", "duplicates", "late_samples", "invalid_samples", "resets"):
            stat.add(key, getattr(s, key))
        stat.add("inference_errors", self.inference_errors)
        stat.add("backend", self.runner.backend_name)
        stat.add("model_hash", str(getattr(self.runner, "model_hash", "")))
        if self.last_inference_failed:
            stat.summary(ERROR, f"inference failing: {self.last_error}")
        elif not self.enabled:
            stat.summary(OK, "disabled")
        else:
            stat.summary(OK, "classifying")


    def destroy_node(self):
        # Also runs on a node whose __init__ raised (bad parameter): rclpy's context destroys every node it tracks.
        runner = getattr(self, "runner", None)
        if hasattr(runner, "close"):
            runner.close()
        return super().destroy_node()


def main(args=None):
    spin_node(BehaviorNode, args)


if __name__ == "__main__":
    main()
