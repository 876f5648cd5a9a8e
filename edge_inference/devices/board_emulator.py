"""A Python peer that behaves like the PWM board firmware, on a pseudo-terminal.

Used by the walking-skeleton integration test, ``make demo`` and the simulator's
"simulated board". ``BoardLogic`` mirrors ``firmware/arduino/pwm_bridge/board.c``
(same modes, watchdog, manual override, calibration and replies); the firmware
tests run the real sketch in simavr instead.

Usage::

    board = BoardEmulator()            # creates a pty; board.port_path is what the bridge opens
    board.start()
    board.set_rc(1500, 1500, 1000)     # RC receiver pulses µs (mode < 1700 µs = auto)
    board.push_imu(accel=(0, 0, 9.81), gyro=(0, 0, 0.1))
    steer_us, throttle_us = board.applied_us
    board.unplug(); board.replug()     # serial loss; port_path (a symlink) returns
    board.inject_bytes(b"\xaa\x04noise")  # line noise towards the host
    board.stop()
"""
from __future__ import annotations

import os
import select
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from edge_inference.core import serial_protocol as sp

FIRMWARE_VERSION = (1, 0, 0)
MANUAL_THRESHOLD_US = 1700   # RC mode channel above this = manual
RC_TIMEOUT_MS = 100          # no RC pulses for this long = RC lost


@dataclass
class BoardLogic:
    """The firmware's state machine; time is passed in (ms)."""
    watchdog_ms: int = 250
    board_id: str = "emulator"
    limits: dict[int, sp.ChannelLimits] = field(default_factory=lambda: {
        sp.CHANNEL_STEERING: sp.ChannelLimits(sp.CHANNEL_STEERING, 1000, 1500, 2000),
        sp.CHANNEL_THROTTLE: sp.ChannelLimits(sp.CHANNEL_THROTTLE, 1000, 1500, 2000)})
    armed: bool = False
    estop: bool = False
    command_us: tuple[int, int] | None = None
    last_command_ms: float = -1e12
    rc_us: tuple[int, int, int] = (0, 0, 0)
    last_rc_ms: float = -1e12
    applied: tuple[int, int] = (1500, 1500)
    mode: int = sp.MODE_DISARMED
    flags: int = sp.FLAG_WATCHDOG | sp.FLAG_RC_LOST
    rx_errors: int = 0
    loop_time_us: int = 0

    def neutral(self) -> tuple[int, int]:
        return self.limits[0].center_us, self.limits[1].center_us

    def clamp(self, channel: int, us: int) -> int:
        lim = self.limits[channel]
        return max(lim.min_us, min(lim.max_us, us))

    def update(self, now_ms: float) -> None:
        """Pick mode and output: manual > e-stop > disarmed > watchdog > auto."""
        rc_ok = now_ms - self.last_rc_ms <= RC_TIMEOUT_MS
        watchdog = now_ms - self.last_command_ms > self.watchdog_ms
        flags = (sp.FLAG_WATCHDOG if watchdog else 0) | (0 if rc_ok else sp.FLAG_RC_LOST)
        flags |= sp.FLAG_ESTOP if self.estop else 0
        if rc_ok and self.rc_us[2] > MANUAL_THRESHOLD_US:
            self.mode, self.applied = sp.MODE_MANUAL, (self.clamp(0, self.rc_us[0]), self.clamp(1, self.rc_us[1]))
        elif self.estop:
            self.mode, self.applied = sp.MODE_ESTOP, self.neutral()
        elif not self.armed:
            self.mode, self.applied = sp.MODE_DISARMED, self.neutral()
        elif watchdog or self.command_us is None:
            self.mode, self.applied = sp.MODE_FAILSAFE, self.neutral()
        else:
            self.mode = sp.MODE_AUTO
            self.applied = (self.clamp(0, self.command_us[0]), self.clamp(1, self.command_us[1]))
        self.flags = flags

    def handle(self, frame: sp.Frame, now_ms: float) -> list[bytes]:
        """Act on one valid frame; return the reply frames."""
        t, seq = frame.msg_type, frame.seq
        if t == sp.MsgType.COMMAND:
            steer, throttle = sp.decode_command(frame)
            if not all(sp.PULSE_MIN_US <= us <= sp.PULSE_MAX_US for us in (steer, throttle)):
                return [sp.encode_ack(seq, t, sp.ACK_INVALID)]
            self.command_us, self.last_command_ms = (steer, throttle), now_ms
            self.update(now_ms)
            return [sp.encode_command_ack(seq, sp.CommandAck(*self.applied, self.mode, self.flags))]
        if t == sp.MsgType.HEARTBEAT:
            return [sp.encode_frame(sp.MsgType.HEARTBEAT_ACK, seq)]
        if t == sp.MsgType.ARM:
            want = frame.payload[0] == 1
            if want and self.estop:
                return [sp.encode_ack(seq, t, sp.ACK_REFUSED)]
            self.armed = want
            self.update(now_ms)
            return [sp.encode_ack(seq, t, sp.ACK_OK)]
        if t == sp.MsgType.ESTOP:
            self.estop = frame.payload[0] == 1
            if self.estop:
                self.armed = False
            self.update(now_ms)
            return [sp.encode_ack(seq, t, sp.ACK_OK)]
        if t == sp.MsgType.CAL_GET:
            ch = frame.payload[0]
            if ch not in self.limits:
                return [sp.encode_ack(seq, t, sp.ACK_INVALID)]
            return [sp.encode_cal_data(seq, self.limits[ch])]
        if t == sp.MsgType.CAL_SET:
            lim = sp.decode_limits(frame)
            try:
                lim.validate()
            except sp.ProtocolError:
                return [sp.encode_ack(seq, t, sp.ACK_INVALID)]
            if self.armed:
                return [sp.encode_ack(seq, t, sp.ACK_REFUSED)]
            self.limits[lim.channel] = lim
            self.update(now_ms)
            return [sp.encode_ack(seq, t, sp.ACK_OK)]
        if t == sp.MsgType.HELLO:
            return [sp.encode_version(seq, sp.Version(sp.PROTOCOL_VERSION, *FIRMWARE_VERSION, self.board_id))]
        return []  # board->host types arriving here are ignored, like the firmware does

    def telemetry(self) -> sp.Telemetry:
        return sp.Telemetry(*self.applied, *self.rc_us, self.mode, self.armed, self.flags,
                            self.loop_time_us, self.rx_errors)


class BoardEmulator:
    """``BoardLogic`` served on a pty, with a stable symlink path that survives unplug/replug."""

    def __init__(self, port_path: str | os.PathLike | None = None, watchdog_ms: int = 250,
                 telemetry_hz: float = 20.0):
        if port_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="board-")
            port_path = os.path.join(self._tmpdir, "ttyBOARD")
        else:
            self._tmpdir = None
        self.port_path = str(port_path)
        self.logic = BoardLogic(watchdog_ms=watchdog_ms)
        self.telemetry_period = 1.0 / telemetry_hz
        self.parser = sp.FrameParser()
        self.frames_received = 0
        self.commands_received = 0
        self._imu: list[sp.ImuSample] = []
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._t0 = time.monotonic()
        self._tx_seq = sp.SeqCounter()
        self._plug()

    # ------------------------------------------------------------ public API
    @property
    def applied_us(self) -> tuple[int, int]:
        """(steering_us, throttle_us) the board outputs now."""
        with self._lock:
            self.logic.update(self._now_ms())
            return self.logic.applied

    @property
    def mode(self) -> int:
        with self._lock:
            self.logic.update(self._now_ms())
            return self.logic.mode

    @property
    def armed(self) -> bool:
        return self.logic.armed

    def set_rc(self, steering_us: int, throttle_us: int, mode_us: int) -> None:
        """Receiver pulse widths as the board would measure them (refreshes RC-lost timer)."""
        with self._lock:
            self.logic.rc_us = (int(steering_us), int(throttle_us), int(mode_us))
            self.logic.last_rc_ms = self._now_ms()

    def push_imu(self, accel: tuple[float, float, float], gyro: tuple[float, float, float],
                 t_us: int | None = None) -> None:
        """Queue one IMU sample (m/s², rad/s) to stream back as an IMU frame."""
        t = int(self._now_ms() * 1000) if t_us is None else int(t_us)
        with self._lock:
            self._imu.append(sp.ImuSample(t, tuple(map(float, accel)), tuple(map(float, gyro))))

    def inject_bytes(self, data: bytes) -> None:
        """Write raw bytes to the host, e.g. line noise, between the board's own frames."""
        with self._lock:
            self._write(data)

    def start(self) -> "BoardEmulator":
        self._running = True
        self._thread = threading.Thread(target=self._run, name="board-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._unplug_fds()
        if self._tmpdir:
            Path(self.port_path).unlink(missing_ok=True)
            os.rmdir(self._tmpdir)
            self._tmpdir = None

    def unplug(self) -> None:
        """Close the pty and remove the port path, as when the USB cable is pulled."""
        with self._lock:
            self._unplug_fds()
            Path(self.port_path).unlink(missing_ok=True)
            self.logic = BoardLogic(watchdog_ms=self.logic.watchdog_ms)  # power lost: reboots neutral, disarmed

    def replug(self) -> None:
        with self._lock:
            self._plug()

    def __enter__(self) -> "BoardEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ internals
    def _now_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1e3

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: a byte-exact UART
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.parser.reset()
        link = Path(self.port_path)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(slave))

    def _unplug_fds(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def _write(self, data: bytes) -> None:
        fd = self._master
        if fd is None:
            return
        try:
            os.write(fd, data)
        except BlockingIOError:
            pass  # the bridge is not reading: a real UART drops bytes too
        except OSError:
            pass  # no reader attached (EIO): same as a cable with nobody listening

    def _run(self) -> None:
        next_telemetry = time.monotonic()
        while self._running:
            fd = self._master
            if fd is None:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.005)
            except (OSError, ValueError):  # fd closed by unplug() meanwhile
                continue
            data = b""
            if ready:
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    data = b""
            t_loop = time.monotonic()
            with self._lock:
                if self._master != fd:
                    continue
                now = self._now_ms()
                before = self.parser.stats.errors
                replies: list[bytes] = []
                for frame in self.parser.feed(data):
                    self.frames_received += 1
                    self.commands_received += frame.msg_type == sp.MsgType.COMMAND
                    replies += self.logic.handle(frame, now)
                self.logic.rx_errors += self.parser.stats.errors - before
                self.logic.update(now)
                if time.monotonic() >= next_telemetry:
                    next_telemetry += self.telemetry_period
                    if next_telemetry < time.monotonic():
                        next_telemetry = time.monotonic() + self.telemetry_period
                    self.logic.loop_time_us = int((time.monotonic() - t_loop) * 1e6)
                    replies.append(sp.encode_telemetry(self._tx_seq.next(), self.logic.telemetry()))
                imu, self._imu = self._imu, []
                replies += [sp.encode_imu(self._tx_seq.next(), s) for s in imu]
            for r in replies:
                self._write(r)

