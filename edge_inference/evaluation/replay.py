"""Replay a bag through the same cores the robot runs, on simulated time.

Camera, state, IMU and label messages are fed in bag order to
`ChunkScheduler` (policy node core) and `ImuWindower` + `ProbabilitySmoother`
(behavior node core), with the model runners the nodes use. Time comes only
from the bag (header stamps and log times) plus a fixed simulated model latency,
so a replay is deterministic: the same bag and model give the same predictions.
Wall-clock model timings are collected separately (they are not deterministic).

What the robot would do with bad input is what the replay does: frames with an
unusable encoding or a stamp older than the previous frame are dropped and
counted; a gap longer than `max_action_age` leaves the scheduler neutral.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from edge_inference.core.bag_io import BagMessage, UnsupportedImageEncodingError, image_to_rgb, stamp_ns
from edge_inference.core.chunk_scheduler import ChunkScheduler, SchedulerConfig
from edge_inference.core.files import InputFileError
from edge_inference.core.imu_window import ImuWindower, ProbabilitySmoother, SmootherConfig, WindowConfig
from edge_inference.evaluation.metrics import STATE_TIMEOUT_NS  # a state older than this counts as neutral
from edge_inference.evaluation.window_labels import TRANSITION, UNLABELLED, window_label

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
SOURCE_MANUAL = 2  # VehicleCommand.SOURCE_MANUAL
MODE_MANUAL = 2  # VehicleState.MODE_MANUAL


class PolicyLike(Protocol):
    action_names: list[str]
    dt: float

    def predict(self, image_rgb: np.ndarray, state: np.ndarray) -> np.ndarray: ...


class BehaviorLike(Protocol):
    class_names: list[str]

    def predict(self, window: np.ndarray) -> tuple[np.ndarray, int]: ...


@dataclass
class ReplayConfig:
    image_topic: str = "/camera/image_raw"
    command_topic: str = "/vehicle/command"  # teleop ground truth (source == manual)
    state_topic: str = "/vehicle/state"  # policy state input; falls back to the previous teleop command
    imu_topic: str = "/imu/data_raw"
    mag_topic: str = "/imu/mag"
    label_topic: str = "/behavior/label"  # BehaviorState carrying the true class
    policy_stats_topic: str = "/policy/stats"  # recorded on-robot timings, when present
    behavior_stats_topic: str = "/behavior/stats"
    teleop_only: bool = True  # score only commands with source == manual
    # Ground truth: "command" = manual VehicleCommands (Donkey imports, teleop nodes);
    # "state" = VehicleState in MODE_MANUAL (a rover drive steered by the RC transmitter).
    teleop: str = "command"
    sim_latency_ms: float = 0.0  # simulated model latency: the chunk arrives this long after the frame
    holdout_tail: float | None = None  # score the policy only on this last fraction of the camera frames
    score_from_ns: int | None = None  # ... i.e. on teleop ticks from this stamp on (resolve_holdout sets it)
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(mode="queue", max_action_age=0.5))
    window: WindowConfig = field(default_factory=lambda: WindowConfig(stride=25))
    smoother: SmootherConfig = field(default_factory=SmootherConfig)

    def __post_init__(self) -> None:
        if self.teleop not in ("command", "state"):
            raise ValueError(f"teleop must be 'command' or 'state', got {self.teleop!r}")
        if not self.sim_latency_ms >= 0:
            raise ValueError(f"sim_latency_ms must be >= 0, got {self.sim_latency_ms}")

    def topics(self) -> list[str]:
        return list(self.expected_types())

    def expected_types(self) -> dict[str, str]:
        """Topic -> the message type the replay can use on it."""
        pkg = "edge_inference_msgs/msg"
        return {self.image_topic: "sensor_msgs/msg/Image", self.command_topic: f"{pkg}/VehicleCommand",
                self.state_topic: f"{pkg}/VehicleState", self.imu_topic: "sensor_msgs/msg/Imu",
                self.mag_topic: "sensor_msgs/msg/MagneticField", self.label_topic: f"{pkg}/BehaviorState",
                self.policy_stats_topic: f"{pkg}/InferenceStats", self.behavior_stats_topic: f"{pkg}/InferenceStats"}


@dataclass
class ReplayResult:
    """Everything the metrics need, as plain arrays and lists."""

    action_names: list[str] = field(default_factory=list)
    dt: float = 0.0
    # control ticks at teleop command times
    tick_ns: list[int] = field(default_factory=list)
    tick_pred: list[np.ndarray] = field(default_factory=list)  # (A,), NaN when neutral
    tick_target: list[np.ndarray] = field(default_factory=list)  # (A,)
    tick_chunk_ns: list[int] = field(default_factory=list)  # image stamp of the chunk behind the action (0: neutral)
    neutral_reasons: Counter = field(default_factory=Counter)
    # every accepted chunk: image stamp and actions (H, A)
    chunk_t0_ns: list[int] = field(default_factory=list)
    chunk_actions: list[np.ndarray] = field(default_factory=list)
    # behavior
    class_names: list[str] = field(default_factory=list)
    window_ns: list[int] = field(default_factory=list)
    y_pred: list[int] = field(default_factory=list)
    y_true: list[int] = field(default_factory=list)  # window_label: class, or < 0 (not scored)
    codes: list[int] = field(default_factory=list)
    # bookkeeping
    counts: Counter = field(default_factory=Counter)  # input problems: what was dropped, by reason
    activity: Counter = field(default_factory=Counter)  # normal pipeline behavior (frames not needed, ...)
    warnings: list[str] = field(default_factory=list)
    recorded_latency_ms: dict[str, list[float]] = field(default_factory=dict)  # from the bag
    wall_latency_ms: dict[str, list[float]] = field(default_factory=dict)  # measured here
    state_source: str = ""
    score_from_ns: int | None = None  # ticks before it are replayed (state history) but not scored
    codebook_size: int | None = None  # FSQ: product of the levels
    first_ns: int | None = None
    last_ns: int | None = None

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def time_wall(self, stage: str, ms: float) -> None:
        self.wall_latency_ms.setdefault(stage, []).append(ms)


class Replayer:
    """Feeds messages one at a time; `finish()` returns the result."""

    def __init__(self, config: ReplayConfig, policy: PolicyLike | None = None,
                 behavior: BehaviorLike | None = None, bag_topics: Iterable[str] = (),
                 clock: Callable[[], float] = time.perf_counter):
        self.config = config
        self.policy = policy
        self.behavior = behavior
        self.clock = clock
        self.result = ReplayResult(score_from_ns=config.score_from_ns)
        bag_topics = set(bag_topics)
        self._use_state_topic = config.state_topic in bag_topics
        self.result.state_source = config.state_topic if self._use_state_topic else (
            f"previous teleop command on {config.command_topic} (bag has no {config.state_topic})")
        self.scheduler = ChunkScheduler(config.scheduler, enabled=True)
        self._state: np.ndarray | None = None
        self._state_ns = 0  # stamp of the state above
        self._prev_state: np.ndarray | None = None  # the one before, for frames stamped like _state
        self._prev_state_ns = 0
        self._last_stamp: dict[str, int] = {}
        self._pending: list[tuple[int, int, np.ndarray]] = []  # (arrival ns, image stamp ns, actions)
        self._busy_until_ns = -1
        self._latency_ns = int(round(config.sim_latency_ms * NS_PER_MS))
        self._expected = config.expected_types()
        if policy is not None:
            self.result.action_names = list(policy.action_names)
            self.result.dt = float(policy.dt)
        if behavior is not None:
            self.result.class_names = list(behavior.class_names)
            levels = getattr(getattr(behavior, "config", None), "levels", None)
            self.result.codebook_size = int(np.prod(levels)) if levels else None
            self.windower = ImuWindower(config.window)
            self.smoother = ProbabilitySmoother(config.smoother)
        self._label_ns: list[int] = []  # label stamps, ascending
        self._label_ids: list[int] = []
        teleop_topic = config.command_topic if config.teleop == "command" else config.state_topic
        for topic, why in ((config.image_topic, "policy"), (teleop_topic, "policy")):
            if policy is not None and topic not in bag_topics:
                self.result.warn(f"bag has no {topic}: the {why} cannot be scored")
        if behavior is not None and config.imu_topic not in bag_topics:
            self.result.warn(f"bag has no {config.imu_topic}: the behavior model cannot be scored")
        if behavior is not None and config.label_topic not in bag_topics:
            self.result.warn(f"bag has no {config.label_topic}: behavior predictions are not scored")

    # ------------------------------------------------------------------ dispatch
    def feed(self, item: BagMessage) -> None:
        r = self.result
        r.first_ns = item.log_ns if r.first_ns is None else r.first_ns
        r.last_ns = item.log_ns
        self._flush_pending(item.log_ns)
        topic = item.topic
        c = self.config
        expected = self._expected.get(topic)
        if expected is not None and item.msgtype != expected and not (
                topic == c.image_topic and item.msgtype == "sensor_msgs/msg/CompressedImage"):
            r.counts[f"wrong_type {topic} ({item.msgtype})"] += 1
            r.warn(f"{topic} carries {item.msgtype}, expected {expected}; those messages were skipped")
            return
        if topic == c.image_topic and self.policy is not None:
            self._on_image(item)
        elif topic == c.command_topic and c.teleop == "command":
            self._on_command(item)
        elif topic == c.state_topic:
            self._on_state(item)
        elif topic == c.imu_topic and self.behavior is not None:
            self._on_imu(item)
        elif topic == c.mag_topic and self.behavior is not None:
            f = item.msg.magnetic_field
            self.windower.add_mag(stamp_ns(item.msg.header), (f.x, f.y, f.z))
        elif topic == c.label_topic and self.behavior is not None:
            self._on_label(item)
        elif topic in (c.policy_stats_topic, c.behavior_stats_topic):
            self._on_stats(item)

    def _monotonic(self, topic: str, stamp: int) -> bool:
        """Drop messages whose header stamp goes back in time on their topic (as nodes do)."""
        last = self._last_stamp.get(topic)
        if last is not None and stamp < last:
            self.result.counts[f"non_monotonic_stamp {topic}"] += 1
            self.result.warn(f"{topic}: header stamps go backwards; those messages were dropped")
            return False
        self._last_stamp[topic] = stamp
        return True

    # ------------------------------------------------------------------ policy
    def _on_image(self, item: BagMessage) -> None:
        r = self.result
        t0 = stamp_ns(item.msg.header)
        now = item.log_ns
        if not self._monotonic(self.config.image_topic, t0):
            return
        if now < self._busy_until_ns:
            r.activity["frames_dropped_model_busy"] += 1
            return
        if not self.scheduler.wants_chunk(max(now, t0)):
            r.activity["frames_not_needed"] += 1
            return
        start = self.clock()
        try:
            rgb = image_to_rgb(item.msg)
        except UnsupportedImageEncodingError as err:
            r.counts[f"unusable_image_encoding {err.encoding}"] += 1
            r.warn(f"{self.config.image_topic}: {err}; those frames were dropped")
            return
        except ValueError as err:
            r.counts["malformed_image"] += 1
            r.warn(f"{self.config.image_topic}: {err}")
            return
        decoded = self.clock()
        state, state_ns = self._state, self._state_ns
        if state is not None and state_ns >= t0:  # a command stamped with this very frame is its target,
            state, state_ns = self._prev_state, self._prev_state_ns  # not yet applied: use the one before
        if state is None:
            r.counts["frames_without_state (zeros used)"] += 1
            state = np.zeros(len(r.action_names))
        elif t0 - state_ns > STATE_TIMEOUT_NS:
            # After a pause the bridge has timed out to neutral: the car applies (0, 0), the
            # same convention the ACT dataset trains with (a segment starts from zeros).
            r.activity["frames_after_pause (state reset to zeros)"] += 1
            state = np.zeros(len(r.action_names))
        try:
            actions = np.asarray(self.policy.predict(rgb, state), dtype=np.float64)
        except ValueError as err:  # the node logs and stays neutral; so does the replay
            r.counts["policy_errors"] += 1
            r.warn(f"policy failed on a frame: {err}")
            return
        done = self.clock()
        r.time_wall("image_decode", (decoded - start) * 1e3)
        r.time_wall("policy_inference", (done - decoded) * 1e3)
        arrival = max(now, t0) + self._latency_ns
        self._busy_until_ns = arrival
        self._pending.append((arrival, t0, actions))
        self._flush_pending(now)

    def _flush_pending(self, now: int) -> None:
        while self._pending and self._pending[0][0] <= now:
            arrival, t0, actions = self._pending.pop(0)
            status = self.scheduler.add_chunk(actions, t0, self.result.dt, arrival)
            if status == "ok":
                self.result.chunk_t0_ns.append(t0)
                self.result.chunk_actions.append(actions)
            else:
                self.result.counts[f"chunks_rejected {status}"] += 1

    def _on_command(self, item: BagMessage) -> None:
        msg = item.msg
        if self.config.teleop_only and int(msg.source) != SOURCE_MANUAL:
            self.result.activity["commands_not_teleop (not scored)"] += 1
            return
        t = stamp_ns(msg.header)
        if not self._monotonic(self.config.command_topic, t):
            return
        self._score_tick(t, np.array([msg.steering, msg.throttle], dtype=np.float64))
        if self.policy is not None and not self._use_state_topic:
            self._set_state(np.array([msg.steering, msg.throttle]), t)  # applied until the next one

    def _on_state(self, item: BagMessage) -> None:
        msg = item.msg
        t = stamp_ns(msg.header)
        if not self._monotonic(self.config.state_topic, t):
            return
        values = np.array([msg.steering, msg.throttle], dtype=np.float64)
        if self.config.teleop == "state":
            if int(msg.mode) == MODE_MANUAL:
                self._score_tick(t, values)  # before updating: the policy has not seen this state
            else:
                self.result.activity["states_not_manual (not scored)"] += 1
        self._set_state(values, t)

    def _set_state(self, values: np.ndarray, t: int) -> None:
        self._prev_state, self._prev_state_ns = self._state, self._state_ns
        self._state, self._state_ns = values, t

    def _score_tick(self, t: int, target: np.ndarray) -> None:
        """One control tick at teleop time t: what would the scheduler apply, next to the teleop."""
        if self.policy is not None:
            self._flush_pending(t)
            action = self.scheduler.action_at(t)
            pred = np.full(len(target), np.nan) if action.is_neutral else np.asarray(action.values, np.float64)
            start = self.config.score_from_ns
            if action.is_neutral and (start is None or t >= start):
                self.result.neutral_reasons[action.reason] += 1
            self.result.tick_ns.append(t)
            self.result.tick_pred.append(pred[: len(target)])
            self.result.tick_target.append(target)
            self.result.tick_chunk_ns.append(0 if action.is_neutral else int(action.stamp_ns))
        else:
            self.result.tick_ns.append(t)
            self.result.tick_target.append(target)

    # ------------------------------------------------------------------ behavior
    def _on_imu(self, item: BagMessage) -> None:
        msg = item.msg
        a, g = msg.linear_acceleration, msg.angular_velocity
        windows = self.windower.add_imu(stamp_ns(msg.header), (a.x, a.y, a.z), (g.x, g.y, g.z))
        for window in windows:
            start = self.clock()
            try:
                probs, code = self.behavior.predict(window.data)
            except ValueError as err:
                self.result.counts["behavior_errors"] += 1
                self.result.warn(f"behavior model failed on a window: {err}")
                continue
            self.result.time_wall("behavior_inference", (self.clock() - start) * 1e3)
            class_id, _ = self.smoother.update(probs)
            self.result.window_ns.append(window.stamp_ns)
            self.result.y_pred.append(class_id)
            self.result.y_true.append(self._window_truth(window.stamp_ns))
            self.result.codes.append(int(code))

    def _on_label(self, item: BagMessage) -> None:
        """A label holds from its stamp until the next label (segment labels)."""
        msg = item.msg
        t = stamp_ns(msg.header)
        if not self._monotonic(self.config.label_topic, t):
            return
        names = self.result.class_names
        if names and str(msg.label) in names:
            label = names.index(str(msg.label))
        elif int(msg.class_id) < 0:
            # class_id -1: "no label"; with a name (e.g. STAND_TO_SIT) it is an annotated
            # activity the model does not output, i.e. a transition.
            label = TRANSITION if str(msg.label) else UNLABELLED
        elif names and int(msg.class_id) < len(names) and not str(msg.label):
            label = int(msg.class_id)
        else:
            label = TRANSITION
            self.result.counts[f"labels_outside_model_classes {msg.label or msg.class_id}"] += 1
        self._label_ns.append(t)
        self._label_ids.append(label)

    def _label_at(self, t_ns: int) -> int:
        """The label in force at ``t_ns`` (UNLABELLED before the first label)."""
        i = bisect.bisect_right(self._label_ns, t_ns) - 1
        return self._label_ids[i] if i >= 0 else UNLABELLED

    def _window_truth(self, stamp_ns: int) -> int:
        """Ground truth of the window whose newest grid row is at ``stamp_ns``: ``window_label``
        of the labels in force at each of its grid times (evaluation/window_labels.py)."""
        w = self.config.window
        period_ns = NS_PER_S / w.sample_rate_hz
        times = [stamp_ns - int(round(k * period_ns)) for k in range(w.window_length - 1, -1, -1)]
        return window_label([self._label_at(t) for t in times])

    def _on_stats(self, item: BagMessage) -> None:
        msg = item.msg
        prefix = "policy" if item.topic == self.config.policy_stats_topic else "behavior"
        for stage in ("preprocess_ms", "inference_ms", "postprocess_ms", "end_to_end_ms"):
            value = float(getattr(msg, stage))
            if np.isfinite(value):
                self.result.recorded_latency_ms.setdefault(f"{prefix}_{stage[:-3]}", []).append(value)

    # ------------------------------------------------------------------ end
    def finish(self) -> ReplayResult:
        self._flush_pending(2**62)
        r = self.result
        if self.policy is not None:
            r.activity.update({f"scheduler {k}": v for k, v in vars(self.scheduler.stats).items() if v})
        if self.behavior is not None:
            stats = vars(self.windower.stats)
            r.counts.update({f"imu {k}": stats[k] for k in ("duplicates", "late_samples") if stats[k]})
            r.activity.update({f"imu_window {k}": v for k, v in stats.items()
                               if k not in ("duplicates", "late_samples") and v})
        return r


def replay(messages: Iterable[BagMessage], config: ReplayConfig, policy: Any = None,
           behavior: Any = None, bag_topics: Iterable[str] = ()) -> ReplayResult:
    """Feed every message through a Replayer and return what it collected."""
    replayer = Replayer(config, policy, behavior, bag_topics)
    for item in messages:
        replayer.feed(item)
    return replayer.finish()


def resolve_holdout(bag: str | Path, config: ReplayConfig) -> ReplayConfig:
    """The config with `score_from_ns` set to the first frame of its `holdout_tail` in this bag.

    The same frames `train-act --holdout-tail` held out (`datasets/holdout.py`).
    """
    if config.holdout_tail is None or config.score_from_ns is not None:
        return config
    from dataclasses import replace

    from edge_inference.datasets.holdout import frame_stamps, tail_split

    start = tail_split(frame_stamps(bag, config.image_topic), config.holdout_tail, gap_s=0.0).start_ns
    return replace(config, score_from_ns=start)


def evaluate_bag(bag: str, config: ReplayConfig, policy: Any = None, behavior: Any = None,
                 run_info: dict | None = None) -> tuple[dict, ReplayResult]:
    """Read a bag (as far as readable), replay it, score it: (metrics dict, raw result).

    Raises BagError when the bag cannot be read at all, and ValueError when the
    bag has nothing that the given models can be scored on.
    """
    from edge_inference.core.bag_io import ReadStats, read_bag

    config = resolve_holdout(bag, config)
    stats = ReadStats()
    messages = read_bag(bag, topics=config.topics(), stats=stats)
    first = next(messages, None)  # opening the bag fills stats.topics
    replayer = Replayer(config, policy, behavior, bag_topics=stats.topics)
    if first is not None:
        replayer.feed(first)
        for item in messages:
            replayer.feed(item)
    result = replayer.finish()
    return finish_metrics(bag, config, stats, result, run_info), result


def finish_metrics(bag: str, config: ReplayConfig, stats, result: ReplayResult, run_info: dict | None) -> dict:
    """Score a finished replay and add the bag/run sections; ValueError when nothing was scorable."""
    from edge_inference.evaluation.metrics import drive_time_s, score_replay

    if not result.tick_target and not result.window_ns:
        hints = [f"{k}: {v}" for k, v in sorted(result.activity.items()) if "not" in k]  # e.g. no teleop
        problems = "; ".join(stats.warnings + result.warnings + hints) or "no matching topics"
        raise InputFileError(f"{bag}: nothing to evaluate ({problems}); topics in the bag: "
                         f"{sorted(stats.topics) or 'none'}")
    metrics = score_replay(result)
    duration = 0.0 if result.first_ns is None else (result.last_ns - result.first_ns) / 1e9
    bag_info = stats.to_dict()
    bag_info["path"] = Path(bag).name  # metrics do not depend on where the bag lies
    folder = str(Path(bag).resolve().parent) + "/"
    bag_info["warnings"] = [w.replace(folder, "").replace(str(Path(bag).parent) + "/", "") for w in stats.warnings]
    bag_info["duration_s"] = round(duration, 3)
    if result.tick_ns:  # next to the span: how much of it is driving (pauses > DRIVE_GAP_S cut out)
        bag_info["driving_time_s"] = round(float(drive_time_s(np.asarray(result.tick_ns, np.int64))[-1]), 3)
    metrics["bag"] = bag_info
    metrics["run"] = {"bag": Path(bag).name, "sim_latency_ms": config.sim_latency_ms,
                      "scheduler_mode": config.scheduler.mode, **(run_info or {})}
    return metrics
