"""An interactive calibration session with the PWM board (the library behind `edge-inference calibrate`).

The session edits a ``Calibration`` from typed commands while a sender thread keeps the board fed;
``run_session`` always disarms and restores the saved limits at the end.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Callable, Iterable

from edge_inference.core import serial_protocol as sp
from edge_inference.core.pwm_mapping import Calibration, CalibrationError, save_calibration
from edge_inference.devices.board_client import BoardError

SEND_PERIOD_S = 0.05


class SessionDone(Exception):
    """The user asked to quit."""


class CalibrationSession:
    """The pure part: commands in, calibration and the pulse to output out."""

    def __init__(self, cal: Calibration, path: Path):
        self.cal, self.path = cal, path
        self.channel = "steering"
        self.pulse = {"steering": cal.steering.neutral_us, "throttle": cal.throttle.neutral_us}

    def pulses(self) -> tuple[int, int]:
        return self.pulse["steering"], self.pulse["throttle"]

    def _ch(self):
        return getattr(self.cal, self.channel)

    def _set_pulse(self, us: int) -> str:
        self.pulse[self.channel] = max(sp.PULSE_MIN_US, min(sp.PULSE_MAX_US, us))
        return f"{self.channel}: {self.pulse[self.channel]} µs"

    def handle(self, line: str) -> str:
        words = line.split()
        if not words:
            return ""
        cmd, rest = words[0].lower(), words[1:]
        ch = self._ch()
        try:
            if cmd in ("steering", "throttle"):
                other = "throttle" if cmd == "steering" else "steering"
                self.channel = cmd
                self.pulse[other] = getattr(self.cal, other).neutral_us
                return f"{cmd} selected at {self.pulse[cmd]} µs ({other} back to center)"
            if cmd.lstrip("-").isdigit():
                return self._set_pulse(int(cmd))
            if cmd in ("+", "-"):
                step = int(rest[0]) if rest else 10
                return self._set_pulse(self.pulse[self.channel] + (step if cmd == "+" else -step))
            if cmd in ("center", "min", "max"):
                setattr(ch, f"{cmd}_us", self.pulse[self.channel] - (ch.trim_us if cmd == "center" else 0))
                return f"{self.channel}.{cmd}_us = {getattr(ch, cmd + '_us')}"
            if cmd == "trim":
                ch.trim_us = int(rest[0])
                return f"{self.channel}.trim_us = {ch.trim_us}"
            if cmd == "reverse":
                ch.reverse = not ch.reverse
                return f"{self.channel}.reverse = {ch.reverse}"
            if cmd in ("deadband", "limit", "rate"):
                key = "max_rate" if cmd == "rate" else cmd
                setattr(ch, key, float(rest[0]))
                return f"{self.channel}.{key} = {getattr(ch, key)}"
            if cmd == "show":
                return "\n".join(f"{name}: {dataclasses.asdict(getattr(self.cal, name))}"
                                 for name in ("steering", "throttle"))
            if cmd == "save":
                save_calibration(self.cal, self.path)
                return f"saved {self.path}"
            if cmd in ("quit", "exit", "q"):
                raise SessionDone
        except (IndexError, ValueError) as exc:  # CalibrationError is a ValueError
            return f"error: {exc}" if isinstance(exc, CalibrationError) else f"error: bad arguments for {cmd!r}"
        return f"unknown command {cmd!r} (see `edge-inference calibrate --help`)"


def run_session(client, session: CalibrationSession, lines: Iterable[str],
                write: Callable[[str], None]) -> None:
    """Drive the board while reading commands; always disarms and restores limits at the end."""
    wide = [sp.ChannelLimits(ch, sp.PULSE_MIN_US, neutral, sp.PULSE_MAX_US)
            for ch, neutral in enumerate(session.cal.neutral_us())]
    lock = threading.Lock()
    stop = threading.Event()
    client.ack(sp.encode_arm, False)
    for lim in wide:
        if client.ack(sp.encode_cal_set, lim) != sp.ACK_OK:
            raise BoardError(f"the board refused calibration limits {lim}")
    if client.ack(sp.encode_arm, True) != sp.ACK_OK:
        raise BoardError("the board refused to arm (e-stop latched?)")

    def sender() -> None:
        while not stop.is_set():
            with lock:
                pulses = session.pulses()
            client.send(sp.encode_command, *pulses)
            stop.wait(SEND_PERIOD_S)

    thread = threading.Thread(target=sender, name="calibrate-sender", daemon=True)
    thread.start()
    try:
        write(f"driving {session.channel} at {session.pulses()} µs; type commands (quit to end)")
        for line in lines:
            try:
                with lock:
                    reply = session.handle(line)
            except SessionDone:
                break
            if reply:
                write(reply)
    finally:
        stop.set()
        thread.join(timeout=1.0)
        client.ack(sp.encode_arm, False)
        try:
            limits = session.cal.validate().board_limits()
        except CalibrationError as exc:
            write(f"calibration is invalid ({exc}); the board keeps its default limits until the bridge connects")
            limits = []
        for lim in limits:
            client.ack(sp.encode_cal_set, lim)
