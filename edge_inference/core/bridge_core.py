"""Pure logic of the PWM bridge: command validation, watchdog, e-stop latch, arm state,
link state with reconnect backoff, and round-trip timing. No ROS, no serial, no clock:
every method takes ``now`` (s, monotonic) so tests drive time directly.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

from edge_inference.core.config_fields import param
from edge_inference.core.pwm_mapping import PwmMapper
from edge_inference.core.serial_protocol import FLAG_BRIDGE_TIMEOUT, FLAG_ESTOP

LINK_DOWN, LINK_CONNECTING, LINK_UP = 0, 1, 2
LINK_NAMES = {LINK_DOWN: "down", LINK_CONNECTING: "connecting", LINK_UP: "up"}


@dataclass
class BridgeConfig:
    """Parameters of pwm_bridge_node (defaults mirror config/rover.yaml)."""
    serial_port: str = param("/dev/ttyUSB0", "serial device of the PWM board (a udev symlink is best)")
    baudrate: int = param(115200, "serial baud rate", range=(9600, 2000000))
    command_timeout: float = param(0.2, "neutral when no vehicle/command for this long, s", range=(0.02, 5.0))
    send_rate: float = param(50.0, "command frames per second to the board (latest or neutral)", range=(1.0, 500.0))
    heartbeat_rate: float = param(5.0, "heartbeat (RTT probe) frames per second", range=(0.1, 100.0))
    link_timeout: float = param(0.5, "link is down when the board sends nothing for this long, s", range=(0.05, 10.0))
    write_timeout: float = param(0.25, "a serial write that cannot finish in this long is counted and dropped, s "
                                 "(the frame CRC makes a partial frame harmless; link_timeout decides the link)",
                                 range=(0.01, 5.0))
    handshake_timeout: float = param(1.0, "wait for the board's VERSION after opening, s", range=(0.05, 10.0))
    reconnect_initial_s: float = param(0.2, "first reopen delay after a serial failure, s", range=(0.01, 60.0))
    reconnect_max_s: float = param(5.0, "longest reopen delay, s", range=(0.01, 600.0))
    calibration_file: str = param("", "PWM calibration YAML; empty = the package's config/calibration.yaml")
    arm_on_connect: bool = param(False, "arm the board after the handshake (simulation/demo); the car needs bridge/arm")
    frame_id: str = param("base_link", "header.frame_id of vehicle/state")
    imu_frame_id: str = param("imu_link", "header.frame_id of imu/data_raw from the board")
    rate_tolerance: float = param(0.2, "command frame rate deviation from send_rate before diagnostics WARN "
                                  "(fraction)", range=(0.0, 1.0), read_only=True)
    rtt_warn_ms: float = param(20.0, "command round trip p95 above this is WARN (diagnostics), ms",
                               range=(0.0, 10000.0), read_only=True)
    rtt_error_ms: float = param(100.0, "command round trip p95 above this is ERROR (diagnostics), ms",
                                range=(0.0, 10000.0), read_only=True)


class CommandRejected(ValueError):
    """A command that must not reach the wheels (NaN, out of range)."""


def validate_command(steering: float, throttle: float, tolerance: float = 1e-3) -> None:
    """Raise CommandRejected with the reason; values must be finite and within [-1, 1]."""
    for name, v in (("steering", steering), ("throttle", throttle)):
        if not math.isfinite(v):
            raise CommandRejected(f"{name} is {v} (not finite)")
        if abs(v) > 1.0 + tolerance:
            raise CommandRejected(f"{name}={v:.3f} outside [-1, 1]")


@dataclass(frozen=True)
class Output:
    steering_us: int
    throttle_us: int
    reason: str        # "command", "timeout", "estop", "rejected", "no_command"
    flags: int         # bridge-side failsafe flags (VehicleState.FLAG_*)


class BridgeCore:
    """What pulse to send now, given the last command, the watchdog and the e-stop latch."""

    def __init__(self, mapper: PwmMapper, command_timeout: float):
        self.mapper, self.command_timeout = mapper, command_timeout
        self.last_command: tuple[float, float] | None = None
        self.last_command_t = -math.inf
        self.estop_latched = False
        self.arm_requested = False
        self.watchdog_trips = 0
        self.rejected = 0
        self.last_reject_reason = ""
        self._timed_out = True
        self._rejected_latest = False

    def on_command(self, steering: float, throttle: float, now: float) -> str | None:
        """Accept a normalized command; return the rejection reason, or None when accepted.

        A rejected command drops the vehicle to neutral at once (the producer is broken;
        holding its previous command would be guessing)."""
        try:
            validate_command(steering, throttle)
        except CommandRejected as exc:
            self.rejected += 1
            self.last_reject_reason = str(exc)
            self._rejected_latest = True
            return str(exc)
        self.last_command = (max(-1.0, min(1.0, steering)), max(-1.0, min(1.0, throttle)))
        self.last_command_t = now
        self._rejected_latest = False
        return None

    def set_estop(self, latched: bool) -> None:
        self.estop_latched = latched
        if latched:
            self.arm_requested = False

    def set_arm(self, armed: bool) -> str | None:
        """Request arming; refused (reason returned) while the e-stop is latched."""
        if armed and self.estop_latched:
            return "e-stop is latched: release it before arming"
        self.arm_requested = armed
        return None

    def timed_out(self, now: float) -> bool:
        return now - self.last_command_t > self.command_timeout

    def output(self, now: float) -> Output:
        flags = FLAG_ESTOP if self.estop_latched else 0
        timed_out = self.timed_out(now)
        if timed_out and not self._timed_out and self.last_command is not None:
            self.watchdog_trips += 1
        self._timed_out = timed_out
        if timed_out:
            flags |= FLAG_BRIDGE_TIMEOUT
        if self.estop_latched:
            return Output(*self.mapper.neutral(), "estop", flags)
        if self._rejected_latest:
            return Output(*self.mapper.neutral(), "rejected", flags)
        if self.last_command is None:
            return Output(*self.mapper.neutral(), "no_command", flags)
        if timed_out:
            return Output(*self.mapper.neutral(), "timeout", flags)
        return Output(*self.mapper.map(*self.last_command, now), "command", flags)


class Backoff:
    """Exponential reconnect delay: initial, 2x each failure, capped; reset on success."""

    def __init__(self, initial_s: float, max_s: float):
        self.initial_s, self.max_s = initial_s, max_s
        self._next = initial_s

    def next_delay(self) -> float:
        d = self._next
        self._next = min(self.max_s, self._next * 2.0)
        return d

    def reset(self) -> None:
        self._next = self.initial_s


class LinkMonitor:
    """Link state: DOWN -> (open) CONNECTING -> (VERSION) UP -> (silence/error) DOWN."""

    def __init__(self, link_timeout: float, handshake_timeout: float, backoff: Backoff):
        self.link_timeout, self.handshake_timeout, self.backoff = link_timeout, handshake_timeout, backoff
        self.state = LINK_DOWN
        self.last_rx = -math.inf
        self.opened_at = -math.inf
        self.retry_at = 0.0
        self.reconnects = 0
        self.last_error = ""

    def on_open(self, now: float) -> None:
        self.state, self.opened_at, self.last_rx = LINK_CONNECTING, now, now

    def on_frame(self, now: float) -> None:
        self.last_rx = now

    def on_handshake(self, now: float) -> None:
        self.state, self.last_rx = LINK_UP, now
        self.backoff.reset()

    def on_failure(self, now: float, error: str) -> None:
        """Serial error, handshake timeout or silence: go DOWN and schedule a reopen."""
        if self.state != LINK_DOWN:
            self.reconnects += 1
        self.state, self.last_error = LINK_DOWN, error
        self.retry_at = now + self.backoff.next_delay()

    def check(self, now: float) -> str | None:
        """Return a failure reason when the link should be dropped now."""
        if self.state == LINK_CONNECTING and now - self.opened_at > self.handshake_timeout:
            return f"no VERSION from the board within {self.handshake_timeout:.2f} s"
        if self.state == LINK_UP and now - self.last_rx > self.link_timeout:
            return f"board silent for {now - self.last_rx:.2f} s"
        return None

    def should_open(self, now: float) -> bool:
        return self.state == LINK_DOWN and now >= self.retry_at


class RttTracker:
    """Round-trip times from send time by sequence number to the board's echo of it."""

    def __init__(self, window: int = 200):
        self._sent: dict[tuple[int, int], float] = {}
        self.samples: collections.deque[float] = collections.deque(maxlen=window)
        self.last_ms = math.nan

    def sent(self, msg_type: int, seq: int, now: float) -> None:
        if len(self._sent) > 512:  # unanswered probes (link loss) must not grow forever
            self._sent.clear()
        self._sent[(msg_type, seq)] = now

    def answered(self, msg_type: int, seq: int, now: float) -> float | None:
        t = self._sent.pop((msg_type, seq), None)
        if t is None:
            return None
        self.last_ms = (now - t) * 1e3
        self.samples.append(self.last_ms)
        return self.last_ms
