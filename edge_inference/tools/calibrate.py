"""`edge-inference calibrate`: find each channel's center/min/max by driving the real servo/ESC.

Put the car on a stand (wheels free) first. The tool opens the board, widens the
board's limits to the protocol range, arms it and sends the pulse you type at
20 Hz (the board's watchdog drops to neutral within 250 ms if the tool dies).
Commands, one per line::

    steering | throttle        choose the channel (the other one goes to its center)
    1520                       output this pulse width (µs)
    + [step] | - [step]        nudge the pulse (default 10 µs)
    center | min | max         store the current pulse as center / min / max
    trim <µs> | reverse | deadband <x> | limit <x> | rate <x>
    show | save | quit

``save`` validates and writes ``config/calibration.yaml`` (or ``--file``). On exit the
board is disarmed and gets back the limits of the saved calibration.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable

from .. import serial_protocol as sp
from ..pwm_mapping import (Calibration, CalibrationError, default_calibration_path, load_calibration,
                           save_calibration)

SEND_PERIOD_S = 0.05


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="interactive PWM calibration of steering and throttle",
                              description=__doc__)
    p.add_argument("--port", required=True, help="serial port of the PWM board, e.g. /dev/ttyUSB0")
    p.add_argument("--baudrate", type=int, default=115200)
    p.add_argument("--file", default=None, help="calibration YAML (default: the package's config/calibration.yaml)")
    p.set_defaults(func=run)


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
            raise RuntimeError(f"the board refused calibration limits {lim}")
    if client.ack(sp.encode_arm, True) != sp.ACK_OK:
        raise RuntimeError("the board refused to arm (e-stop latched?)")

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


def run(args) -> int:
    import serial

    from ..board_client import BoardClient, BoardTimeout
    path = Path(args.file) if args.file else default_calibration_path()
    try:
        cal = load_calibration(path) if path.is_file() else Calibration()
        session = CalibrationSession(cal, path)
        with BoardClient(args.port, args.baudrate) as client:
            print(f"connected to {client.handshake()}")
            print("Put the car on a stand: the wheels will turn and the motor may spin.")

            def lines():
                while True:
                    try:
                        yield input(f"[{session.channel} {session.pulse[session.channel]} µs]> ")
                    except EOFError:
                        return
            run_session(client, session, lines(), print)
    except (serial.SerialException, BoardTimeout, CalibrationError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("board disarmed")
    return 0
