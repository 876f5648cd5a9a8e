"""diagnostic_updater-style health reporting (the ROS package has no PyPI wheel).

Follows ros/diagnostics' ``diagnostic_updater`` semantics: each check is a small named
task; the ``Updater`` runs them together at a fixed period and publishes one
``diagnostic_msgs/DiagnosticArray`` on ``/diagnostics`` with names "<node>: <task>"
and a ``hardware_id``. As upstream: a task starts at ERROR "No message was set" (a
check that forgets its summary is not silently OK), ``merge_summary`` keeps every
non-OK message, adding a task publishes "Node starting up" at once, and
``force_update()`` publishes now for events that matter now (e-stop, link lost,
model failure). Frequency and latency checks are reusable tasks. The messages are
the same type and field layout as upstream's, so rqt_robot_monitor and the
diagnostic_aggregator read them alike; they are not byte-identical (upstream also
rate-limits ``force_update`` and names the frequency keys differently).
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


def level_of(b) -> int:
    """diagnostic_msgs levels are ``byte`` (bytes in rclpy); the cores use ints."""
    return b[0] if isinstance(b, (bytes, bytearray)) else int(b)


OK = level_of(DiagnosticStatus.OK)
WARN = level_of(DiagnosticStatus.WARN)
ERROR = level_of(DiagnosticStatus.ERROR)
STALE = level_of(DiagnosticStatus.STALE)
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}
NO_MESSAGE = "No message was set"
STARTING = "Node starting up"


def percentiles_ms(values) -> tuple[float, float] | None:
    """(p50, p95) of recent latencies (ms); None when there are none yet."""
    if not values:
        return None
    arr = np.fromiter(values, dtype=np.float64)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


class StatusBuilder:
    """Collects one task's level, message and key/values (like DiagnosticStatusWrapper)."""

    def __init__(self, name: str, hardware_id: str):
        self.name, self.hardware_id = name, hardware_id
        self.level, self.message = ERROR, NO_MESSAGE  # as upstream: a task must set its summary
        self.values: list[tuple[str, str]] = []

    def summary(self, level: int, message: str) -> None:
        self.level, self.message = int(level), message

    def merge_summary(self, level: int, message: str) -> None:
        """Upstream's mergeSummary: the worst level wins; messages of the same kind (OK / not OK) join.

        So a WARN merged into an ERROR keeps both messages, and an OK merged into a problem
        adds nothing.
        """
        level = int(level)
        if (level > OK) == (self.level > OK):
            self.message = f"{self.message}; {message}" if self.message else message
        elif level > self.level:
            self.message = message
        self.level = max(self.level, level)

    def add(self, key: str, value) -> None:
        if isinstance(value, float):
            value = f"{value:.3f}"
        self.values.append((key, str(value)))

    def to_msg(self) -> DiagnosticStatus:
        return DiagnosticStatus(level=bytes([self.level]), name=self.name, message=self.message,
                                hardware_id=self.hardware_id,
                                values=[KeyValue(key=k, value=v) for k, v in self.values])


class FrequencyTask:
    """Rate of an event (frames, commands) against an expected rate, over a window."""

    def __init__(self, expected_hz: float, tolerance: float = 0.2, window_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.expected_hz, self.tolerance, self.window_s, self.clock = expected_hz, tolerance, window_s, clock
        self._stamps: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self._stamps.append(self.clock())

    def rate(self) -> float:
        now = self.clock()
        with self._lock:
            while self._stamps and now - self._stamps[0] > self.window_s:
                self._stamps.popleft()
            n = len(self._stamps)
        return n / self.window_s

    def __call__(self, stat: StatusBuilder) -> None:
        hz = self.rate()
        stat.summary(OK, "desired rate met")
        stat.add("rate_hz", hz)
        stat.add("expected_hz", self.expected_hz)
        if hz == 0.0:
            stat.merge_summary(ERROR, "no events")
        elif hz < self.expected_hz * (1 - self.tolerance):
            stat.merge_summary(WARN, f"rate {hz:.1f} Hz below expected {self.expected_hz:.1f} Hz")
        elif hz > self.expected_hz * (1 + self.tolerance):
            stat.merge_summary(WARN, f"rate {hz:.1f} Hz above expected {self.expected_hz:.1f} Hz")


class LatencyTask:
    """p50/p95 of recent latencies (ms) against warn/error thresholds on p95."""

    def __init__(self, warn_ms: float, error_ms: float, window: int = 200):
        self.warn_ms, self.error_ms = warn_ms, error_ms
        self._values: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()

    def record(self, ms: float) -> None:
        with self._lock:
            self._values.append(float(ms))

    def percentiles(self) -> tuple[float, float] | None:
        with self._lock:
            values = list(self._values)
        return percentiles_ms(values)

    def __call__(self, stat: StatusBuilder) -> None:
        p = self.percentiles()
        if p is None:
            stat.summary(OK, "no samples yet")
            stat.add("latency_ms_p50", "n/a")
            return
        stat.summary(OK, "latency within bounds")
        stat.add("latency_ms_p50", p[0])
        stat.add("latency_ms_p95", p[1])
        if p[1] > self.error_ms:
            stat.merge_summary(ERROR, f"latency p95 {p[1]:.1f} ms > {self.error_ms:.0f} ms")
        elif p[1] > self.warn_ms:
            stat.merge_summary(WARN, f"latency p95 {p[1]:.1f} ms > {self.warn_ms:.0f} ms")


class Updater:
    """Runs registered tasks every ``period_s`` and publishes them on /diagnostics."""

    def __init__(self, node, hardware_id: str, period_s: float = 1.0):
        from edge_inference.ros.qos import reliable_qos
        self.node, self.hardware_id = node, hardware_id
        self._tasks: list[tuple[str, Callable[[StatusBuilder], None]]] = []
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos(10))
        self._timer = node.create_timer(period_s, self.update)

    def add(self, name: str, fn: Callable[[StatusBuilder], None]) -> None:
        """Register a task and announce it at once ("Node starting up"), as upstream does."""
        self._tasks.append((name, fn))
        stat = StatusBuilder(f"{self.node.get_name()}: {name}", self.hardware_id)
        stat.summary(OK, STARTING)
        self._publish([stat])

    def force_update(self) -> None:
        """Publish every task now, for a state change that must not wait for the next period."""
        self.update()

    def collect(self) -> list[StatusBuilder]:
        out = []
        for name, fn in self._tasks:
            stat = StatusBuilder(f"{self.node.get_name()}: {name}", self.hardware_id)
            try:
                fn(stat)
            except Exception as exc:  # a broken check must show up, not kill the node
                stat.summary(ERROR, f"diagnostic task failed: {exc!r}")
            out.append(stat)
        return out

    def update(self) -> None:
        self._publish(self.collect())

    def _publish(self, stats: list[StatusBuilder]) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.status = [s.to_msg() for s in stats]
        self._pub.publish(msg)
