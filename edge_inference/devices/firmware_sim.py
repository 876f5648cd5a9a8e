"""Build the real firmware and run it in simavr on a pty (dev/CI only; the robot has the board).

``build_firmware()`` runs ``make -C firmware`` (arduino-mk + gcc-avr for the sketch,
gcc + libsimavr for the harness, gcc for the host parser build). ``SimBoard`` runs
``firmware/build/sim_board`` with the compiled sketch: its UART is a pty behind a
stable symlink (``port_path``), so the bridge node talks to the real firmware the
same way it talks to a USB-serial Arduino.

    paths = build_firmware()                # raises FirmwareToolsMissing with the reason
    with SimBoard(paths) as board:          # board.port_path -> the virtual Uno's UART
        board.set_rc(1500, 1500, 2000)      # RC receiver pulses µs (0 = no pulses)
        board.wait_pwm(lambda s, t: s == 1500, timeout_s=1.0)
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge_inference.core.errors import EdgeInferenceError

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
REQUIRED_TOOLS = {"avr-gcc": "gcc-avr", "make": "make", "gcc": "gcc"}
REQUIRED_FILES = {"/usr/share/arduino/Arduino.mk": "arduino-mk",
                  "/usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h": "arduino-core-avr",
                  "/usr/include/simavr/sim_avr.h": "libsimavr-dev"}


class FirmwareToolsMissing(EdgeInferenceError, RuntimeError):
    """The Debian packages needed to build or simulate the firmware are not installed."""


@dataclass(frozen=True)
class FirmwarePaths:
    elf: Path
    sim_board: Path
    proto_host: Path
    elf_test_hooks: Path  # same sketch + PWM_BRIDGE_TEST_HOOKS (HEARTBEAT seq 0xEE hangs the MCU)


def missing_packages() -> list[str]:
    missing = [pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None]
    missing += [pkg for path, pkg in REQUIRED_FILES.items() if not Path(path).is_file()]
    return sorted(set(missing))


def build_firmware(firmware_dir: Path = FIRMWARE_DIR) -> FirmwarePaths:
    """Build (incrementally) the sketch ELF, the simavr harness and the host parser."""
    missing = missing_packages()
    if missing:
        raise FirmwareToolsMissing("missing Debian packages: " + " ".join(missing)
                                   + " (`make apt` installs them where apt is permitted)")
    build = firmware_dir / "build"
    build.mkdir(exist_ok=True)
    with open(build / ".lock", "w") as lock:  # several test runs may share one checkout
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(["make", "-s", "-C", str(firmware_dir)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"firmware build failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return FirmwarePaths(build / "uno" / "pwm_bridge.elf", build / "sim_board", build / "proto_host",
                         build / "uno-test" / "pwm_bridge.elf")


class SimBoard:
    """The compiled sketch running in simavr, paced to real time, UART on a pty."""

    def __init__(self, paths: FirmwarePaths, port_path: str | os.PathLike | None = None,
                 elf: Path | None = None, imu: bool = False):
        self.paths = paths
        self.elf = elf or paths.elf
        self.imu = imu  # a virtual MPU-6050 on the I2C bus (the firmware streams IMU frames)
        self._tmpdir = None
        if port_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="simboard-")
            port_path = os.path.join(self._tmpdir, "ttyUNO")
        self.port_path = str(port_path)
        # (wall s, steer µs, throttle µs, sim µs); (0, 0) while the pins are not driven (MCU in reset)
        self.pwm_history: list[tuple[float, int, int, int]] = []
        self.lag_reports: list[int] = []
        self.rx_idle_sim_us: list[int] = []  # simulated time of the last byte before each 100 ms silence
        self._cond = threading.Condition()
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._ready = 0

    def start(self, timeout_s: float = 10.0) -> "SimBoard":
        argv = [str(self.paths.sim_board), str(self.elf), self.port_path] + (["--imu"] if self.imu else [])
        self._proc = subprocess.Popen(argv,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read_stdout, name="sim_board-stdout", daemon=True)
        self._reader.start()
        if not self._wait(lambda: self._ready >= 1, timeout_s):
            err = self._proc.stderr.read() if self._proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"sim_board did not start: {err}")
        return self

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._command("quit")
                try:
                    self._proc.wait(timeout=3.0)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            if self._reader is not None:
                self._reader.join(timeout=2.0)  # stdout hits EOF once the process is gone
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                stream.close()
            self._proc = None
        if self._tmpdir:
            Path(self.port_path).unlink(missing_ok=True)
            os.rmdir(self._tmpdir)
            self._tmpdir = None

    def __enter__(self) -> "SimBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_rc(self, steering_us: int, throttle_us: int, mode_us: int) -> None:
        """50 Hz receiver pulses on D2/D3/D4; 0 stops a channel's pulses."""
        self._command(f"rc {int(steering_us)} {int(throttle_us)} {int(mode_us)}")

    def set_imu(self, accel: tuple[float, float, float], gyro: tuple[float, float, float]) -> None:
        """Readings of the virtual MPU-6050 (m/s², rad/s); needs ``imu=True``."""
        if not self.imu:
            raise RuntimeError("SimBoard was started without imu=True: no MPU-6050 on the bus")
        self._command("imu " + " ".join(f"{v:.6f}" for v in (*accel, *gyro)))

    def unplug(self) -> None:
        self._command("unplug")

    def replug(self, timeout_s: float = 5.0) -> None:
        n = self._ready
        self._command("replug")
        if not self._wait(lambda: self._ready > n, timeout_s):
            raise RuntimeError("sim_board did not re-create its pty")

    @property
    def pwm_us(self) -> tuple[int, int] | None:
        """(steering_us, throttle_us) on the PWM pins now, None before the first report."""
        with self._cond:
            return self.pwm_history[-1][1:3] if self.pwm_history else None

    def wait_rx_idle(self, count: int, timeout_s: float) -> int | None:
        """Simulated µs of the last byte before the ``count``-th UART silence (None on timeout)."""
        ok = self._wait(lambda: len(self.rx_idle_sim_us) >= count, timeout_s)
        return self.rx_idle_sim_us[count - 1] if ok else None

    def wait_pwm(self, predicate, timeout_s: float) -> tuple[float, int, int, int] | None:
        """First PWM report, the current one or any later one, where ``predicate(steer, throttle)``.

        Every report is checked, so a short-lived state (pins off during a reset) is not missed."""
        with self._cond:
            cursor = [max(0, len(self.pwm_history) - 1)]
        found: list = []

        def check() -> bool:
            while cursor[0] < len(self.pwm_history):
                entry = self.pwm_history[cursor[0]]
                cursor[0] += 1
                if predicate(*entry[1:3]):
                    found.append(entry)
                    return True
            return False
        return found[0] if self._wait(check, timeout_s) else None

    # ------------------------------------------------------------ internals
    def _command(self, line: str) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError("sim_board is not running")
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def _wait(self, predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or (self._proc is not None and self._proc.poll() is not None):
                    return predicate()
                self._cond.wait(min(left, 0.05))
            return True

    def _read_stdout(self) -> None:
        for line in self._proc.stdout:
            parts = line.split()
            with self._cond:
                if parts[:1] == ["ready"]:
                    self._ready += 1
                elif parts[:1] == ["pwm"] and len(parts) == 5:
                    driven = parts[4] == "1"
                    steer, throttle = (int(parts[2]), int(parts[3])) if driven else (0, 0)
                    self.pwm_history.append((time.monotonic(), steer, throttle, int(parts[1])))
                elif parts[:1] == ["rxidle"]:
                    self.rx_idle_sim_us.append(int(parts[1]))
                elif parts[:1] == ["lag"]:
                    self.lag_reports.append(int(parts[1]))
                self._cond.notify_all()
