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

from pathlib import Path

from edge_inference.commands.arg_types import positive_int
from edge_inference.core.pwm_mapping import Calibration, default_calibration_path, load_calibration
from edge_inference.devices.calibration_session import CalibrationSession, run_session


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="interactive PWM calibration of steering and throttle",
                              description=__doc__)
    p.add_argument("--port", required=True, help="serial port of the PWM board, e.g. /dev/ttyUSB0")
    p.add_argument("--baudrate", type=positive_int, default=115200)
    p.add_argument("--file", default=None, help="calibration YAML (default: the package's config/calibration.yaml)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge_inference.devices.board_client import BoardClient

    path = Path(args.file) if args.file else default_calibration_path()
    cal = load_calibration(path) if path.is_file() else Calibration()  # a damaged file stops here, not at save
    session = CalibrationSession(cal, path)
    with BoardClient(args.port, args.baudrate) as client:  # serial errors are OSErrors: one line, exit 2
        print(f"connected to {client.handshake()}")
        print("Put the car on a stand: the wheels will turn and the motor may spin.")

        def lines():
            while True:
                try:
                    yield input(f"[{session.channel} {session.pulse[session.channel]} µs]> ")
                except EOFError:
                    return
        run_session(client, session, lines(), print)
    print("board disarmed")
    return 0
