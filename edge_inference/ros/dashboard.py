"""What `edge-inference top` shows: per-topic rates and ages, model latencies, vehicle state and
non-OK diagnostics (plain Python bookkeeping and the rich rendering; the ROS shell is the command)."""
from __future__ import annotations

import collections
from dataclasses import dataclass, field

RATE_WINDOW_S = 2.0   # messages counted over this window for the rate column


DIAG_STALE_S = 5.0    # diagnostics are published at ~1 Hz: silence this long means the node is gone


LATENCY_WINDOW = 100  # InferenceStats samples kept per model for p50/p95


TOPICS = [
    ("camera", "camera/image_raw", "sensor_msgs/msg/Image", "sensor", True),
    ("imu", "imu/data_raw", "sensor_msgs/msg/Imu", "sensor", True),
    ("chunk", "policy/action_chunk", "edge_inference_msgs/msg/ActionChunk", "reliable", False),
    ("command", "vehicle/command", "edge_inference_msgs/msg/VehicleCommand", "reliable", False),
    ("state", "vehicle/state", "edge_inference_msgs/msg/VehicleState", "reliable", False),
    ("behavior", "behavior/state", "edge_inference_msgs/msg/BehaviorState", "reliable", False),
    ("policy_stats", "policy/stats", "edge_inference_msgs/msg/InferenceStats", "reliable", False),
    ("behavior_stats", "behavior/stats", "edge_inference_msgs/msg/InferenceStats", "reliable", False),
    ("diagnostics", "/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", "reliable", False),
]


MODE_NAMES = {0: "DISARMED", 1: "AUTO", 2: "MANUAL", 3: "FAILSAFE", 4: "ESTOP"}


LINK_NAMES = {0: "DOWN", 1: "CONNECTING", 2: "UP"}


SOURCE_NAMES = {0: "neutral", 1: "policy", 2: "manual"}


FLAG_NAMES = {1: "watchdog", 2: "rc_lost", 4: "bridge_timeout", 8: "estop", 16: "crc_errors"}


@dataclass
class TopicStats:
    """Receive times of one topic (monotonic s) -> rate over the window and age of the newest."""

    times: collections.deque = field(default_factory=collections.deque)
    count: int = 0
    last: float | None = None

    def record(self, now: float) -> None:
        self.times.append(now)
        self.count += 1
        self.last = now

    def rate(self, now: float, listening_since: float | None = None) -> float:
        """Messages per second over the last RATE_WINDOW_S (or since listening began, if shorter)."""
        while self.times and now - self.times[0] > RATE_WINDOW_S:
            self.times.popleft()
        span = RATE_WINDOW_S if listening_since is None else min(RATE_WINDOW_S, now - listening_since)
        return len(self.times) / span if span > 0 else 0.0

    def age(self, now: float) -> float | None:
        return None if self.last is None else now - self.last


@dataclass
class ModelStats:
    """Recent InferenceStats of one model: latencies (ms) and counters."""

    backend: str = ""
    model: str = ""
    inference_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENCY_WINDOW))
    end_to_end_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENCY_WINDOW))
    rate_hz: float = 0.0
    dropped_frames: int = 0


class Dashboard:
    """Everything the table shows, updated from messages; no ROS types needed beyond attribute access."""

    def __init__(self, started: float | None = None):
        self.started = started  # monotonic s when listening began (rates are not diluted at start-up)
        self.topics = {key: TopicStats() for key, *_ in TOPICS}
        self.models: dict[str, ModelStats] = {}
        self.command = None
        self.state = None
        self.behavior = None
        self.diagnostics: dict[str, tuple[int, str, float]] = {}  # status name -> (level, message, received s)

    def on_message(self, key: str, msg, now: float) -> None:
        self.topics[key].record(now)
        if key == "command":
            self.command = msg
        elif key == "state":
            self.state = msg
        elif key == "behavior":
            self.behavior = msg
        elif key in ("policy_stats", "behavior_stats"):
            m = self.models.setdefault(key.removesuffix("_stats"), ModelStats())
            m.backend, m.model = msg.backend, msg.model
            m.inference_ms.append(float(msg.inference_ms))
            m.end_to_end_ms.append(float(msg.end_to_end_ms))
            m.rate_hz, m.dropped_frames = float(msg.rate_hz), int(msg.dropped_frames)
        elif key == "diagnostics":
            from edge_inference.ros.diagnostics import level_of  # noqa: PLC0415 - the CLI parser must not need ROS
            for s in msg.status:
                self.diagnostics[s.name] = (level_of(s.level), s.message, now)

    # -- text for the table (plain strings: testable, and readable in capture-pane) ---------
    def topic_rows(self, now: float) -> list[tuple[str, str, str, str]]:
        rows = []
        for key, topic, *_ in TOPICS:
            st = self.topics[key]
            age = st.age(now)
            rows.append((topic, f"{st.rate(now, self.started):.1f}", "-" if age is None else f"{age:.2f}", str(st.count)))
        return rows

    def model_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        from edge_inference.ros.diagnostics import percentiles_ms  # noqa: PLC0415 - the CLI parser must not need ROS
        rows = []
        for name, m in sorted(self.models.items()):
            inf, e2e = percentiles_ms(m.inference_ms), percentiles_ms(m.end_to_end_ms)
            fmt = (lambda p: "-" if p is None else f"{p[0]:.1f}/{p[1]:.1f}")
            rows.append((name, m.backend, fmt(inf), fmt(e2e), f"{m.rate_hz:.1f}", str(m.dropped_frames)))
        return rows

    def vehicle_lines(self) -> list[str]:
        c, s, b = self.command, self.state, self.behavior
        lines = [
            "command:  " + ("-" if c is None else
                          f"steering {c.steering:+.2f}  throttle {c.throttle:+.2f}  "
                          f"source {SOURCE_NAMES.get(c.source, c.source)}"),
            "board:    " + ("-" if s is None else
                          f"mode {MODE_NAMES.get(s.mode, s.mode)}  armed {'yes' if s.armed else 'no'}  "
                          f"PWM {s.steering_us}/{s.throttle_us} us  rtt {s.rtt_ms:.1f} ms"),
            "link:     " + ("-" if s is None else LINK_NAMES.get(s.link, str(s.link))
                          + ("  failsafe " + ",".join(n for bit, n in FLAG_NAMES.items() if s.failsafe_flags & bit)
                             if s.failsafe_flags else "")),
            "behavior: " + ("-" if b is None else f"{b.label} ({100 * b.confidence:.0f}%)  latency {b.latency_ms:.1f} ms"),
        ]
        return lines

    def problem_lines(self, now: float) -> list[str]:
        """Non-OK statuses, worst first; a status not refreshed for DIAG_STALE_S is STALE (its node is gone)."""
        from edge_inference.ros.diagnostics import LEVEL_NAMES, OK, STALE  # noqa: PLC0415 - the CLI parser must not need ROS
        current = {name: ((STALE, f"no update for {now - t:.0f} s (was: {msg})") if now - t > DIAG_STALE_S
                          else (lvl, msg)) for name, (lvl, msg, t) in self.diagnostics.items()}
        bad = [(lvl, name, msg) for name, (lvl, msg) in current.items() if lvl != OK]
        return [f"{LEVEL_NAMES.get(lvl, lvl):5s} {name}: {msg}" for lvl, name, msg in sorted(bad, reverse=True)]


def render(dash: Dashboard, now: float, title: str, height: int = 24):
    """The rich renderable of the whole dashboard, at most ``height`` lines (an 80x24 SSH terminal fits)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    topics = Table(box=None, expand=False, padding=(0, 1), header_style="bold")
    for col, just in (("topic", "left"), ("Hz", "right"), ("age s", "right"), ("msgs", "right")):
        topics.add_column(col, justify=just)
    for row in dash.topic_rows(now):
        topics.add_row(*row, style="dim" if row[2] == "-" else None)
    models = Table(box=None, expand=False, padding=(0, 1), header_style="bold")
    for col in ("model", "backend", "infer ms", "e2e ms", "Hz", "dropped"):
        models.add_column(col)
    for row in dash.model_rows():
        models.add_row(*row)
    problems = dash.problem_lines(now)
    parts = [Text(title + "   (latencies p50/p95)", style="bold"), Text("\n".join(dash.vehicle_lines())), topics, models,
             Text(f"diagnostics: {len(dash.diagnostics)} statuses, {len(problems)} not OK", style="bold")]
    used = 1 + len(dash.vehicle_lines()) + (1 + len(TOPICS)) + (1 + len(dash.models)) + 1
    room = max(1, height - used - 1)  # the last line stays free so the terminal does not scroll
    parts += [Text(line, style="red" if line.startswith("ERROR") else "yellow", no_wrap=True, overflow="ellipsis")
              for line in problems[:room]]
    return Group(*parts)
