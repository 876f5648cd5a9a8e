"""policy_node: camera frames -> action chunks (worker thread) -> one VehicleCommand per control tick.

Inference never blocks control: a worker thread runs the model on the newest
frame (older unprocessed frames are dropped and counted) whenever the chunk
scheduler wants a new chunk, and a timer publishes a command every
1/control_rate s from ``ChunkScheduler.action_at``, whatever the model time.
All scheduling uses the node clock and image header stamps, so it is exact
under ``use_sim_time``.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, fields

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool

from edge_inference.backends import BACKEND_NAMES, HEURISTIC
from edge_inference.backends.runners import create_policy_runner  # backends import their libraries lazily
from edge_inference.core.chunk_scheduler import ChunkScheduler, SchedulerConfig
from edge_inference.core.config_fields import param
from edge_inference.ros.diagnostics import ERROR, OK, WARN, FrequencyTask, LatencyTask, Updater
from edge_inference.ros.image_conversion import image_msg_to_rgb
from edge_inference.ros.params import LiveParams
from edge_inference.ros.qos import qos_from_name, reliable_qos
from edge_inference.ros.spin import destroy_on_failure, spin_node
from edge_inference.ros.stamps import ns_to_stamp, stamp_to_ns
from edge_inference_msgs.msg import ActionChunk, InferenceStats, VehicleCommand, VehicleState

NS_PER_MS = 1_000_000


@dataclass
class PolicyNodeConfig:
    model_path: str = param("", "policy model (checkpoint dir / ONNX / HEF); empty: heuristic model",
                            read_only=True)
    backend: str = param(HEURISTIC, "inference backend (heuristic: the built-in stand-in, no model)",
                         choices=BACKEND_NAMES, read_only=True)
    threads: int = param(1, "intra-op threads of the model backend (pin to the cores left for inference)", range=(1, 64))
    enabled: bool = param(False, "start enabled (sim demo) or disabled until policy/enable (real car)")
    control_rate: float = param(30.0, "VehicleCommand publish rate, Hz", range=(1.0, 200.0), read_only=True)
    chunk_size: int = param(32, "actions per chunk of the heuristic model", range=(1, 1000), read_only=True)
    policy_fps: float = param(0.0, "rate of the model's training demonstrations, Hz: chunk actions are 1/fps apart; "
                              "0: the model's own (a LeRobot checkpoint without it: 20)", range=(0.0, 1000.0),
                              read_only=True)
    image_qos: str = param("sensor", "camera subscription QoS: sensor or reliable", choices=("sensor", "reliable"),
                           read_only=True)
    latency_warn_ms: float = param(100.0, "image-to-chunk latency p95 above this is WARN (diagnostics), ms",
                                   range=(0.0, 10000.0), read_only=True)
    latency_error_ms: float = param(250.0, "image-to-chunk latency p95 above this is ERROR (diagnostics), ms",
                                    range=(0.0, 10000.0), read_only=True)
    rate_tolerance: float = param(0.2, "command rate deviation from control_rate before diagnostics WARN (fraction)",
                                  range=(0.0, 1.0), read_only=True)


@dataclass(frozen=True)
class InferenceTiming:
    """Where one frame's time went inside the node (ms), for ``bench --pipeline`` and diagnostics."""

    queued_ms: float  # the frame waited for the worker to finish the previous inference
    handoff_ms: float  # frame processable (received, worker free) -> worker start: wake-up / GIL
    convert_ms: float  # Image -> numpy RGB
    predict_ms: float  # runner.predict: preprocessing + model
    chunk_msg_ms: float  # ActionChunk construction
    publish_ms: float  # ActionChunk publish call


def make_policy_runner(cfg: PolicyNodeConfig, dt: float):
    """The model behind the node: the heuristic, or the backend registry's runner."""
    return create_policy_runner(cfg.model_path, cfg.backend, threads=cfg.threads,
                                heuristic={"chunk_size": cfg.chunk_size, "dt": dt})


def action_to_command(values: np.ndarray, action_names) -> tuple[float, float]:
    """(A,) action -> (steering, throttle) in [-1, 1], by action name when the model names them."""
    names = list(action_names)
    i_steer = names.index("steering") if "steering" in names else 0
    i_throttle = names.index("throttle") if "throttle" in names else 1
    return (float(np.clip(values[i_steer], -1.0, 1.0)), float(np.clip(values[i_throttle], -1.0, 1.0)))


#: The state the node can feed a policy: the applied command from vehicle/state, in this order.
STATE_FEATURES = ("steering", "throttle")


class PolicyStateError(ValueError):
    """The model wants an observation.state the node cannot provide."""


def state_layout(state_dim: int, state_names=None) -> list[int]:
    """Indices into ``STATE_FEATURES`` that build the model's state, or PolicyStateError in one line.

    By name where the checkpoint names its state features (any order); unnamed, the state
    must be exactly [steering, throttle].
    """
    if state_names:
        missing = [n for n in state_names if n not in STATE_FEATURES]
        if missing or len(state_names) != state_dim:
            raise PolicyStateError(f"the policy wants observation.state {list(state_names)}; this node provides "
                                   f"{list(STATE_FEATURES)} (no {missing})")
        return [STATE_FEATURES.index(n) for n in state_names]
    if state_dim != len(STATE_FEATURES):
        raise PolicyStateError(f"the policy wants an observation.state of {state_dim} values; this node provides "
                               f"{len(STATE_FEATURES)}: {list(STATE_FEATURES)} (train on that state)")
    return list(range(len(STATE_FEATURES)))


def model_scheduler_defaults(metadata: dict, chunk_size: int) -> dict:
    """LeRobot's select_action: execute n_action_steps per chunk, or ensemble every step with the coeff."""
    out: dict = {}
    coeff = metadata.get("temporal_ensemble_coeff")
    if coeff is not None:
        out.update(mode="ensemble", ensemble_coeff=float(coeff))
    elif metadata.get("n_action_steps"):
        out.update(mode="queue", n_action_steps=max(1, min(int(metadata["n_action_steps"]), int(chunk_size))))
    return out


CONFIG_CLASSES = (PolicyNodeConfig, SchedulerConfig)


class PolicyNode(Node):
    """ROS shell around ChunkScheduler + a policy runner.

    ``runner_factory(cfg, dt) -> runner`` lets tools and tests supply a model
    object with the runner interface (default: ``make_policy_runner``).
    """

    @destroy_on_failure
    def __init__(self, runner_factory=make_policy_runner, **kwargs):
        super().__init__("policy_node", **kwargs)
        self._lock = threading.Lock()  # guards scheduler, state, frame slot, counters
        self._wake = threading.Condition(self._lock)
        # `ros2 param set` takes effect for these; every other parameter is read-only (restart to change)
        self.live_params = LiveParams(self)
        self.live_params.declare(PolicyNodeConfig, "cfg", live=("enabled",), apply=self._apply_policy)
        self.live_params.declare(SchedulerConfig, "sched_cfg", live=tuple(f.name for f in fields(SchedulerConfig)),
                                 apply=self._apply_scheduler)
        self.runner = runner_factory(self.cfg, 1.0 / self.cfg.control_rate)
        metadata = dict(getattr(self.runner, "metadata", None) or {})
        self._state_index = state_layout(int(getattr(self.runner, "state_dim", len(STATE_FEATURES))),
                                         metadata.get("state_names"))
        self._use_policy_fps(metadata)
        self.scheduler = ChunkScheduler(self.sched_cfg, enabled=self.cfg.enabled)
        self._use_model_scheduler_defaults(metadata)
        self._warn_if_queue_outlives_age()

        self._frame: Image | None = None  # newest unprocessed frame
        self._frame_received = 0.0  # perf_counter() when it arrived
        self.timings: collections.deque[InferenceTiming] = collections.deque(maxlen=1000)
        self._last_used_stamp_ns = -1
        self._state = np.zeros(len(self._state_index), dtype=np.float32)  # applied command, in the model's order
        self.dropped_frames = 0
        self.inference_errors = 0
        self.last_error = ""
        self.last_inference_failed = False
        self.last_reason = "no_chunk"
        self._inference_stamps: list[float] = []

        self.pub_command = self.create_publisher(VehicleCommand, "vehicle/command", reliable_qos(10))
        self.pub_chunk = self.create_publisher(ActionChunk, "policy/action_chunk", reliable_qos(10))
        self.pub_stats = self.create_publisher(InferenceStats, "policy/stats", reliable_qos(10))
        self.create_subscription(Image, "camera/image_raw", self._on_image, qos_from_name(self.cfg.image_qos))
        self.create_subscription(VehicleState, "vehicle/state", self._on_state, reliable_qos(10))
        self.create_service(SetBool, "policy/enable", self._on_enable)

        self.command_rate = FrequencyTask(self.cfg.control_rate, tolerance=self.cfg.rate_tolerance)
        self.latency = LatencyTask(warn_ms=self.cfg.latency_warn_ms, error_ms=self.cfg.latency_error_ms)
        self.diag = Updater(self, hardware_id=f"policy:{self.runner.backend_name}")
        self.diag.add("command rate", self.command_rate)
        self.diag.add("image to chunk latency", self.latency)
        self.diag.add("policy", self._policy_status)

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._worker_loop, name="policy_inference", daemon=True)
        self._worker.start()
        # Own callback group: on a multi-threaded executor (`up --executor multi`) a tick never waits
        # behind an image callback or another node's work.
        self.timer = self.create_timer(1.0 / self.cfg.control_rate, self._on_control_tick,
                                       callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"policy: backend={self.runner.backend_name} mode={self.sched_cfg.mode} chunk={self.runner.chunk_size} "
            f"dt={self.runner.dt:.4f}s enabled={self.cfg.enabled}")

    def _use_policy_fps(self, metadata: dict) -> None:
        if self.cfg.policy_fps > 0:
            self.runner.dt = 1.0 / self.cfg.policy_fps
        elif metadata.get("fps_source") == "default":
            self.get_logger().warning(
                f"the model does not say at what rate its demonstrations were recorded: assuming "
                f"{1.0 / self.runner.dt:g} fps; set policy_fps to the dataset's fps")

    def _use_model_scheduler_defaults(self, metadata: dict) -> None:
        """The checkpoint's n_action_steps / temporal ensembling, unless the user set those parameters."""
        given = set(getattr(self, "_parameter_overrides", {}) or {})  # config files, launch args, --param
        wanted = {k: v for k, v in model_scheduler_defaults(metadata, self.runner.chunk_size).items()
                  if k not in given}
        if wanted:
            results = self.set_parameters([Parameter(k, value=v) for k, v in wanted.items()])
            refused = [r.reason for r in results if not r.successful]
            if refused:
                raise PolicyStateError(f"the model's chunk execution {wanted} is not valid here: {refused[0]}")
            self.get_logger().info(f"chunk execution from the model: {wanted}")

    def _warn_if_queue_outlives_age(self, cfg: SchedulerConfig | None = None) -> None:
        cfg = cfg or self.sched_cfg
        if cfg.mode == "queue":
            span = cfg.n_action_steps * self.runner.dt
            if span >= cfg.max_action_age:
                self.get_logger().warning(
                    f"queue mode executes {span:.2f} s of a chunk before replanning but max_action_age is "
                    f"{cfg.max_action_age:.2f} s: expect neutral commands between chunks")

    # -- run-time parameter changes (LiveParams: validated before they are applied) ----------
    def _apply_policy(self, cfg: PolicyNodeConfig, changed: set[str]) -> None:
        with self._lock:
            self.scheduler.set_enabled(cfg.enabled)
            self._wake.notify()
        if "enabled" in changed:
            self.get_logger().info("policy enabled" if cfg.enabled else "policy disabled: commands are neutral")

    def _apply_scheduler(self, cfg: SchedulerConfig, changed: set[str]) -> None:
        with self._lock:
            if "mode" in changed:
                self.scheduler.reset()  # a plan made for one mode means nothing to another
            self.scheduler.config = cfg
            self._wake.notify()
        self._warn_if_queue_outlives_age(cfg)

    # -- callbacks (executor threads) --------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        with self._lock:
            if self._frame is not None:
                self.dropped_frames += 1  # never processed: a newer frame replaces it
            self._frame = msg
            self._frame_received = time.perf_counter()
            self._wake.notify()

    def _on_state(self, msg: VehicleState) -> None:
        with self._lock:
            self._state = np.array([msg.steering, msg.throttle], dtype=np.float32)[self._state_index]

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """Sets the ``enabled`` parameter, so the service and `ros2 param get` always agree."""
        result = self.set_parameters([Parameter("enabled", value=bool(request.data))])[0]
        response.success = result.successful
        response.message = (("policy enabled" if request.data else "policy disabled: commands are neutral")
                            if result.successful else result.reason)
        return response

    def _on_control_tick(self) -> None:
        now = self.get_clock().now().nanoseconds
        with self._lock:
            jumps = self.scheduler.stats.time_jumps
            action = self.scheduler.action_at(now)
            if self.scheduler.stats.time_jumps != jumps:
                self._last_used_stamp_ns = -1  # frames of the new timeline have smaller stamps
                self.get_logger().warning("clock jumped backwards: dropped the current plan")
            if self.scheduler.wants_chunk(now):
                self._wake.notify()
        msg = VehicleCommand()
        if action.is_neutral:
            msg.header.stamp = ns_to_stamp(now)
            msg.steering, msg.throttle, msg.source = 0.0, 0.0, VehicleCommand.SOURCE_NEUTRAL
        else:
            msg.header.stamp = ns_to_stamp(action.stamp_ns)
            msg.steering, msg.throttle = action_to_command(action.values, self.runner.action_names)
            msg.source = VehicleCommand.SOURCE_POLICY
        msg.header.frame_id = "base_link"
        self.pub_command.publish(msg)
        self.command_rate.tick()
        if action.reason != self.last_reason:
            self.get_logger().info(f"command source: {action.source} ({action.reason})", throttle_duration_sec=1.0)
            self.last_reason = action.reason

    # -- worker thread -----------------------------------------------------------------------
    def _frame_wanted(self) -> bool:
        """A frame is waiting and the scheduler wants a chunk (call with the lock held)."""
        return self._frame is not None and self.scheduler.wants_chunk(self.get_clock().now().nanoseconds)

    def _take_frame(self) -> tuple[Image, np.ndarray, float] | None:
        """The newest frame if the scheduler wants a chunk (waits a tick otherwise); None: nothing to do yet."""
        with self._lock:
            # A frame that arrived during the last inference is used at once: waiting for the next
            # one would add up to a frame period without making the chunk any fresher when it is out.
            if not self._frame_wanted():
                self._wake.wait(timeout=1.0 / self.cfg.control_rate)
                if self._stop.is_set() or not self._frame_wanted():
                    return None
            frame, self._frame = self._frame, None
            if stamp_to_ns(frame.header.stamp) <= self._last_used_stamp_ns:
                return None  # same or older image than the last chunk's: nothing new to see
            self._last_used_stamp_ns = stamp_to_ns(frame.header.stamp)
            return frame, self._state.copy(), self._frame_received

    def _worker_loop(self) -> None:
        worker_free = time.perf_counter()  # when the worker last became idle
        while not self._stop.is_set():
            taken = self._take_frame()
            if taken is None:
                continue
            try:
                self._infer(*taken, worker_free)
                self.last_inference_failed = False
            except Exception as exc:  # noqa: BLE001 - a bad frame/model output must be reported, not kill the worker
                with self._lock:
                    self.inference_errors += 1
                    newly_failed = not self.last_inference_failed
                    self.last_inference_failed = True
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self.scheduler.fault("inference_error")  # neutral now, not after max_action_age
                self.get_logger().error(f"frame -> chunk failed: {self.last_error}", throttle_duration_sec=2.0)
                if newly_failed:
                    self.diag.force_update()
            worker_free = time.perf_counter()

    def _infer(self, frame: Image, state: np.ndarray, t_received: float, worker_free: float) -> None:
        t_start = time.perf_counter()
        stamp_ns = stamp_to_ns(frame.header.stamp)
        rgb = image_msg_to_rgb(frame)
        t_converted = time.perf_counter()
        chunk = np.asarray(self.runner.predict(rgb, state))
        t_inferred = time.perf_counter()
        if chunk.ndim != 2 or chunk.shape[1] != self.runner.action_dim:
            raise ValueError(f"policy returned shape {chunk.shape}, expected (H, {self.runner.action_dim})")
        now = self.get_clock().now().nanoseconds
        with self._lock:
            verdict = self.scheduler.add_chunk(chunk, stamp_ns, self.runner.dt, now)
        if verdict != "ok":
            self.get_logger().warning(f"chunk from image {stamp_ns} ns rejected: {verdict}", throttle_duration_sec=2.0)
        msg = ActionChunk()
        msg.header = frame.header
        msg.horizon, msg.action_dim, msg.dt = int(chunk.shape[0]), int(chunk.shape[1]), float(self.runner.dt)
        msg.actions = chunk.astype(np.float32).ravel().tolist()
        msg.action_names = list(self.runner.action_names)
        msg.inference_latency_ms = (t_inferred - t_converted) * 1e3
        msg.backend = self.runner.backend_name
        t_built = time.perf_counter()
        msg.latency_ms = (self.get_clock().now().nanoseconds - stamp_ns) / NS_PER_MS
        self.pub_chunk.publish(msg)
        t_published = time.perf_counter()
        t_ready = max(t_received, worker_free)
        self.timings.append(InferenceTiming((t_ready - t_received) * 1e3, (t_start - t_ready) * 1e3,
                                            (t_converted - t_start) * 1e3,
                                            (t_inferred - t_converted) * 1e3, (t_built - t_inferred) * 1e3,
                                            (t_published - t_built) * 1e3))
        self.latency.record(msg.latency_ms)
        self._publish_stats(frame, t_start, t_converted, t_inferred, t_built, msg.latency_ms)

    def _publish_stats(self, frame: Image, t_start, t_converted, t_inferred, t_built, end_to_end_ms) -> None:
        now_wall = time.monotonic()
        with self._lock:
            self._inference_stamps = [t for t in self._inference_stamps if now_wall - t < 2.0] + [now_wall]
            rate = (len(self._inference_stamps) - 1) / max(1e-6, now_wall - self._inference_stamps[0])
            dropped = self.dropped_frames
        stats = InferenceStats()
        stats.header = frame.header
        stats.model = self.runner.model_hash
        stats.backend = self.runner.backend_name
        stats.preprocess_ms = (t_converted - t_start) * 1e3
        stats.inference_ms = (t_inferred - t_converted) * 1e3
        stats.postprocess_ms = (t_built - t_inferred) * 1e3
        stats.end_to_end_ms = float(end_to_end_ms)
        stats.rate_hz = float(rate)
        stats.dropped_frames = dropped
        self.pub_stats.publish(stats)

    # -- diagnostics / lifecycle -------------------------------------------------------------
    def _policy_status(self, stat) -> None:
        with self._lock:
            s = self.scheduler.stats
            stat.add("enabled", self.scheduler.enabled)
            stat.add("backend", self.runner.backend_name)
            stat.add("model_hash", self.runner.model_hash)
            stat.add("mode", self.sched_cfg.mode)
            stat.add("command_source_reason", self.last_reason)
            stat.add("chunks_accepted", s.chunks_accepted)
            stat.add("chunks_rejected_stale", s.chunks_rejected_stale)
            stat.add("chunks_rejected_non_finite", s.chunks_rejected_non_finite)
            stat.add("actions_skipped", s.actions_skipped)
            stat.add("neutral_ticks", s.neutral_ticks)
            stat.add("dropped_frames", self.dropped_frames)
            stat.add("inference_errors", self.inference_errors)
            if self.last_inference_failed:
                stat.summary(ERROR, f"inference failing: {self.last_error}")
            elif not self.scheduler.enabled:
                stat.summary(OK, "disabled: sending neutral")
            elif self.last_reason != "ok":
                stat.summary(WARN, f"neutral: {self.last_reason}")
            else:
                stat.summary(OK, "driving")

    def destroy_node(self):
        # Also runs on a node whose __init__ raised (bad parameter): rclpy's context destroys every node it tracks.
        if hasattr(self, "_worker"):
            self._stop.set()
            with self._lock:
                self._wake.notify_all()
            self._worker.join(timeout=5.0)
        runner = getattr(self, "runner", None)
        if hasattr(runner, "close"):
            runner.close()
        return super().destroy_node()


def main(args=None):
    spin_node(PolicyNode, args)


if __name__ == "__main__":
    main()
