"""The simulated car's end of the serial cable: what the board applies -> steering angle and speed.

The bridge maps a normalized command to PWM µs through the calibration and sends
it over the serial link; the board (here the Python ``BoardEmulator``, the same
state machine as the firmware) applies it, or neutral when disarmed, e-stopped or
its watchdog fires. The car must move according to what the board *applies*, so
this reads the applied µs and inverts the same calibration
(``pwm_mapping.ChannelCalibration.to_normalized``) before the vehicle model turns
it into a wheel angle and a target speed.
"""
from __future__ import annotations

from pathlib import Path

from edge_inference.core.pwm_mapping import Calibration, default_calibration_path, load_calibration
from edge_inference.devices.board_emulator import BoardEmulator


def load_sim_calibration(path: str = "") -> Calibration:
    """The bridge's calibration: ``path``, else config/calibration.yaml if present, else the defaults."""
    if path:
        return load_calibration(path)
    default = default_calibration_path()
    return load_calibration(default) if Path(default).is_file() else Calibration().validate()


BOARD_KINDS = ("emulator", "firmware")


class BoardLink:
    """The simulated board on a pty (the bridge opens ``port_path``) and the inverse PWM mapping.

    kind "emulator": the Python ``BoardEmulator`` (same state machine as the firmware).
    kind "firmware": the real sketch compiled for the Uno, running in simavr
    (``firmware_sim.SimBoard``); needs the Debian packages of `make apt`.
    """

    def __init__(self, port_path: str | None = None, calibration: Calibration | None = None,
                 watchdog_ms: int = 250, kind: str = "emulator"):
        if kind not in BOARD_KINDS:
            raise ValueError(f"board kind must be one of {BOARD_KINDS}, got {kind!r}")
        self.kind = kind
        self.calibration = calibration or Calibration().validate()
        self.commands_seen = 0
        if kind == "emulator":
            self.board = BoardEmulator(port_path, watchdog_ms=watchdog_ms)
            # the board enforces the same hard limits the bridge would program into it
            for lim in self.calibration.board_limits():
                self.board.logic.limits[lim.channel] = lim
        else:
            from edge_inference.devices.firmware_sim import SimBoard, build_firmware
            self.board = SimBoard(build_firmware(), port_path)

    @property
    def port_path(self) -> str:
        return self.board.port_path

    def start(self) -> "BoardLink":
        self.board.start()
        return self

    def stop(self) -> None:
        self.board.stop()

    def applied_us(self) -> tuple[int, int]:
        """(steering_us, throttle_us) on the PWM outputs; neutral while the MCU drives none."""
        if self.kind == "emulator":
            return self.board.applied_us
        us = self.board.pwm_us
        if us is None or 0 in us:  # before the first report or the MCU in reset: servo/ESC see no pulses
            return self.calibration.neutral_us()
        return us

    def applied(self) -> tuple[float, float, int, int]:
        """(steering, throttle) normalized as applied by the board, plus the raw µs."""
        steer_us, throttle_us = self.applied_us()
        return (self.calibration.steering.to_normalized(steer_us),
                self.calibration.throttle.to_normalized(throttle_us), steer_us, throttle_us)

    @property
    def mode(self) -> int | None:
        """The board's mode (emulator only; the firmware reports it to the bridge, not to us)."""
        return self.board.mode if self.kind == "emulator" else None

    @property
    def commands_received(self) -> int | None:
        return self.board.commands_received if self.kind == "emulator" else None
