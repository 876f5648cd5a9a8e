"""`edge-inference calibrate` against the board emulator: pulses reach the board, the file is written."""
from __future__ import annotations

import time

from edge_inference.core import serial_protocol as sp
from edge_inference.core.pwm_mapping import Calibration, load_calibration
from edge_inference.devices.board_client import BoardClient
from edge_inference.devices.board_emulator import BoardEmulator
from edge_inference.devices.calibration_session import CalibrationSession, run_session


def test_session_commands_edit_the_calibration(tmp_path):
    s = CalibrationSession(Calibration(), tmp_path / "cal.yaml")
    assert s.handle("1530") == "steering: 1530 µs" and s.pulses() == (1530, 1500)
    s.handle("center")
    s.handle("+ 400")
    s.handle("max")
    s.handle("1120")
    s.handle("min")
    assert "unknown command" in s.handle("frobnicate")
    assert "bad arguments" in s.handle("trim")
    s.handle("throttle")
    assert s.pulses() == (1530, 1500)  # steering back to its (new) center
    s.handle("1650")
    s.handle("max")
    s.handle("reverse")
    assert (s.cal.steering.center_us, s.cal.steering.max_us, s.cal.steering.min_us) == (1530, 1930, 1120)
    assert s.cal.throttle.max_us == 1650 and s.cal.throttle.reverse
    s.handle("3000")
    assert s.pulses()[1] == sp.PULSE_MAX_US  # never outside the protocol range
    s.handle("1800")
    s.handle("min")  # min above center: refused at save with the reason
    assert s.handle("save").startswith("error:") and "min_us < max_us" in s.handle("save")


def test_calibrate_drives_the_board_and_saves(tmp_path):
    path = tmp_path / "calibration.yaml"
    out: list[str] = []
    seen: list[tuple[int, int]] = []

    with BoardEmulator() as board, BoardClient(board.port_path) as client:
        assert client.handshake().board == "emulator"
        session = CalibrationSession(Calibration(), path)

        def lines():
            for line in ["steering", "2150", "max", "1000", "min", "1480", "center", "throttle", "1620"]:
                yield line
                time.sleep(0.08)  # the sender thread runs at 20 Hz meanwhile
                seen.append(board.applied_us)
            yield "save"
            yield "quit"
            yield "never read"

        run_session(client, session, lines(), out.append)
        assert (2150, 1500) in seen, "a pulse beyond the default 2000 µs limit reached the board"
        assert seen[-1] == (1480, 1620)
        assert not board.armed and board.applied_us == (1480, 1500)  # disarmed at the end
        assert board.logic.limits[0] == sp.ChannelLimits(0, 1000, 1480, 2150)
    cal = load_calibration(path)
    assert (cal.steering.min_us, cal.steering.center_us, cal.steering.max_us) == (1000, 1480, 2150)
    assert any(line.startswith("saved") for line in out)
