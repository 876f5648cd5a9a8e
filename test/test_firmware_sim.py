"""The real firmware (the compiled Uno sketch) in simavr, its UART on a pty.

Boot state, command round trip (latency reported), the board watchdog after the
bridge goes silent, manual override from the RC switch, the bridge node driving
the real firmware (including a pty unplug), and the Python board emulator giving
byte-identical replies to the firmware's state machine (host build).
"""
from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import time

import numpy as np
import pytest
import serial

from edge_inference.core import serial_protocol as sp
from edge_inference.devices.board_emulator import BoardLogic
from edge_inference.devices.firmware_sim import FirmwareToolsMissing, SimBoard, build_firmware

WATCHDOG_S = 0.25


@pytest.fixture(scope="module")
def firmware():
    try:
        return build_firmware()
    except FirmwareToolsMissing as exc:
        # `make test` runs `make apt` first; packages can only be missing where apt is not
        # permitted (not root, no apt-get) or failed (offline): the Makefile printed which.
        can_apt = os.geteuid() == 0 and shutil.which("apt-get") is not None
        pytest.skip(f"firmware tests need Debian packages: {exc}; "
                    + ("`make apt` could not install them (see its warning)" if can_apt
                       else "apt is not permitted here"))


@pytest.fixture
def board(firmware):
    with SimBoard(firmware) as b:
        yield b


class RawLink:
    """A bare serial peer: write frames, read replies (what the bridge does, minus ROS)."""

    def __init__(self, path: str):
        self.port = serial.Serial(path, 115200, timeout=0.01)
        self.parser = sp.FrameParser()
        self.seq = sp.SeqCounter()
        self.frames: list[sp.Frame] = []

    def send(self, encoder, *args) -> int:
        seq = self.seq.next()
        self.port.write(encoder(seq, *args))
        return seq

    def pump(self) -> None:
        self.frames += self.parser.feed(self.port.read(max(1, self.port.in_waiting)))

    def wait(self, msg_type: int, seq: int | None = None, timeout_s: float = 2.0) -> sp.Frame:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.pump()
            for i, f in enumerate(self.frames):
                if f.msg_type == msg_type and (seq is None or f.seq == seq):
                    del self.frames[:i + 1]
                    return f
        raise AssertionError(f"no {sp.MsgType(msg_type).name} (seq {seq}) within {timeout_s} s")

    def telemetry(self, predicate=lambda t: True, timeout_s: float = 2.0) -> sp.Telemetry:
        """The first fresh telemetry (read after this call) for which ``predicate`` holds."""
        self.pump()
        self.frames.clear()
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            t = sp.decode_telemetry(self.wait(sp.MsgType.TELEMETRY, timeout_s=timeout_s))
            if predicate(t):
                return t
        raise AssertionError(f"no telemetry matching the condition within {timeout_s} s; last {t}")

    def close(self) -> None:
        self.port.close()


def connect(board: SimBoard) -> RawLink:
    """Open the board's UART once the firmware runs (its first telemetry), then HELLO."""
    link = RawLink(board.port_path)
    link.wait(sp.MsgType.TELEMETRY, timeout_s=5.0)
    link.wait(sp.MsgType.VERSION, link.send(sp.encode_hello))
    return link


def test_boots_neutral_disarmed_and_ignores_commands_until_armed(board):
    assert board.wait_pwm(lambda s, t: (s, t) == (1500, 1500), 2.0), "PWM pins not at neutral after boot"
    link = RawLink(board.port_path)
    try:
        link.wait(sp.MsgType.TELEMETRY, timeout_s=5.0)
        version = sp.decode_version(link.wait(sp.MsgType.VERSION, link.send(sp.encode_hello)))
        assert (version.protocol, version.board) == (sp.PROTOCOL_VERSION, "uno-pwm")
        t = link.telemetry()
        assert (t.mode, t.armed, t.steering_us, t.throttle_us) == (sp.MODE_DISARMED, False, 1500, 1500)
        assert t.flags & sp.FLAG_WATCHDOG and t.flags & sp.FLAG_RC_LOST
        ack = sp.decode_command_ack(link.wait(sp.MsgType.COMMAND_ACK, link.send(sp.encode_command, 1900, 1900)))
        assert (ack.steering_us, ack.throttle_us, ack.mode) == (1500, 1500, sp.MODE_DISARMED)
        limits = sp.decode_limits(link.wait(sp.MsgType.CAL_DATA, link.send(sp.encode_cal_get, sp.CHANNEL_THROTTLE)))
        assert (limits.min_us, limits.center_us, limits.max_us) == (1000, 1500, 2000)
        link.port.write(sp.encode_heartbeat(0xEE))  # the test-build hang hook is not in the shipped ELF
        link.wait(sp.MsgType.HEARTBEAT_ACK, 0xEE)
        time.sleep(0.1)
        assert board.pwm_us == (1500, 1500)
    finally:
        link.close()


def test_command_round_trip_and_board_watchdog(board):
    link = connect(board)
    try:
        new = sp.ChannelLimits(sp.CHANNEL_THROTTLE, 1300, 1500, 1700)
        assert sp.decode_ack(link.wait(sp.MsgType.ACK, link.send(sp.encode_cal_set, new))) == (sp.MsgType.CAL_SET, sp.ACK_OK)
        assert sp.decode_ack(link.wait(sp.MsgType.ACK, link.send(sp.encode_arm, True))) == (sp.MsgType.ARM, sp.ACK_OK)
        assert sp.decode_ack(link.wait(sp.MsgType.ACK, link.send(sp.encode_cal_set, new)))[1] == sp.ACK_REFUSED
        rtts, idle_before = [], len(board.rx_idle_sim_us)
        for _ in range(25):  # 50 Hz like the bridge
            t0 = last_write = time.monotonic()
            ack = sp.decode_command_ack(link.wait(sp.MsgType.COMMAND_ACK, link.send(sp.encode_command, 1700, 1900)))
            rtts.append((time.monotonic() - t0) * 1e3)
            time.sleep(max(0.0, 0.02 - (time.monotonic() - t0)))
        assert (ack.steering_us, ack.throttle_us, ack.mode) == (1700, 1700, sp.MODE_AUTO), "throttle clamped to 1700"
        assert board.wait_pwm(lambda s, t: (s, t) == (1700, 1700), 1.0)
        print(f"\nfirmware command round trip over pty+simavr: median {np.median(rtts):.2f} ms, "
              f"p95 {np.percentile(rtts, 95):.2f} ms (n={len(rtts)})")
        assert np.median(rtts) < 100.0
        # the bridge dies: no more frames after last_write. The board must go neutral by itself.
        hit = board.wait_pwm(lambda s, t: (s, t) == (1500, 1500), 3.0)
        assert hit, f"board still outputs {board.pwm_us} 3 s after the last command"
        dt = hit[0] - last_write
        # in the firmware's own (simulated) time: last byte received -> pins at neutral
        last_rx_us = board.wait_rx_idle(idle_before + 1, 1.0)
        assert last_rx_us is not None
        dt_sim = (hit[3] - last_rx_us) / 1e6
        print(f"board watchdog: neutral {dt_sim * 1e3:.1f} ms (board time) / {dt * 1e3:.0f} ms (wall) "
              "after the last command; timeout 250 ms")
        assert WATCHDOG_S - 0.002 <= dt_sim <= WATCHDOG_S + 0.02, dt_sim
        assert dt <= WATCHDOG_S + 0.35, dt  # wall clock: loose (the simulation may lag on a busy host)
        t = link.telemetry(lambda t: t.mode == sp.MODE_FAILSAFE)  # skips frames sent before neutral
        assert t.flags & sp.FLAG_WATCHDOG and t.armed and (t.steering_us, t.throttle_us) == (1500, 1500), t
        # a fresh command resumes driving
        link.send(sp.encode_command, 1600, 1600)
        assert board.wait_pwm(lambda s, t: (s, t) == (1600, 1600), 1.0)
    finally:
        link.close()


def test_manual_override_wins(board):
    link = connect(board)
    try:
        link.send(sp.encode_arm, True)
        board.set_rc(1200, 1400, 1000)  # receiver on, switch at auto

        def drive_until(predicate, timeout_s: float = 2.0) -> bool:
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                link.send(sp.encode_command, 1800, 1650)
                if board.wait_pwm(predicate, 0.02):
                    return True
            return False

        assert drive_until(lambda s, t: (s, t) == (1800, 1650))
        board.set_rc(1200, 1400, 2000)  # switch to manual while the host keeps commanding
        assert drive_until(lambda s, t: abs(s - 1200) <= 12 and abs(t - 1400) <= 12), board.pwm_us
        t = link.telemetry(lambda t: t.mode == sp.MODE_MANUAL)
        assert abs(t.rc_mode_us - 2000) <= 12 and abs(t.rc_steering_us - 1200) <= 12
        # e-stop from the host does not take the car from the human holding the transmitter
        link.send(sp.encode_estop, True)
        assert not drive_until(lambda s, t: (s, t) == (1500, 1500), 0.3)
        link.send(sp.encode_estop, False)
        link.send(sp.encode_arm, True)
        board.set_rc(1200, 1400, 1000)  # back to auto: the host's command applies again
        assert drive_until(lambda s, t: (s, t) == (1800, 1650)), board.pwm_us
        board.set_rc(0, 0, 0)  # receiver off
        t = link.telemetry(lambda t: t.flags & sp.FLAG_RC_LOST)
        assert t.mode in (sp.MODE_AUTO, sp.MODE_FAILSAFE)  # RC lost never means manual
    finally:
        link.close()


def test_bridge_node_drives_the_firmware_and_survives_unplug(firmware, ros_context):
    from conftest import spin_until
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from edge_inference.ros.nodes.pwm_bridge_node import PwmBridgeNode
    from edge_inference.ros.qos import reliable_qos
    from edge_inference_msgs.msg import VehicleCommand, VehicleState

    with SimBoard(firmware) as board:
        node = PwmBridgeNode(context=ros_context, parameter_overrides=[
            Parameter("serial_port", value=board.port_path), Parameter("arm_on_connect", value=True),
            Parameter("reconnect_initial_s", value=0.05), Parameter("reconnect_max_s", value=0.2),
            Parameter("link_timeout", value=2.0)])
        probe = Node("fw_probe", context=ros_context)
        states = []
        probe.create_subscription(VehicleState, "vehicle/state", states.append, reliable_qos(50))
        pub = probe.create_publisher(VehicleCommand, "vehicle/command", reliable_qos(10))
        ex = SingleThreadedExecutor(context=ros_context)
        ex.add_node(node)
        ex.add_node(probe)

        def drive(predicate, timeout_s):
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                pub.publish(VehicleCommand(steering=0.5, throttle=0.5, source=VehicleCommand.SOURCE_POLICY))
                if spin_until(ex, predicate, 0.02):
                    return True
            return predicate()

        try:
            # config/calibration.yaml: steering 1000/1500/2000, throttle 1300/1500/1700
            assert drive(lambda: board.pwm_us == (1750, 1600), 15.0), board.pwm_us
            assert node.version is not None and node.version.board == "uno-pwm"
            assert drive(lambda: states and states[-1].mode == VehicleState.MODE_AUTO
                         and states[-1].throttle_us == 1600 and states[-1].rtt_ms > 0.0, 3.0)
            rtt = list(node.rtt.samples)
            print(f"\nbridge node <-> firmware RTT: median {np.median(rtt):.2f} ms, "
                  f"p95 {np.percentile(rtt, 95):.2f} ms (n={len(rtt)})")
            board.unplug()
            assert drive(lambda: states and states[-1].link == VehicleState.LINK_DOWN, 5.0)
            board.replug()
            assert drive(lambda: states and states[-1].link == VehicleState.LINK_UP
                         and states[-1].throttle_us == 1600, 10.0)
            assert node.link.reconnects >= 1
        finally:
            ex.shutdown()
            node.destroy_node()
            probe.destroy_node()


def _host_frames(rng: random.Random, n: int) -> list[bytes]:
    """Host->board frames with valid and invalid values, including board->host types."""
    out = []
    for i in range(n):
        seq = i & 0xFF
        kind = rng.randrange(9)
        if kind <= 2:
            out.append(sp.encode_frame(sp.MsgType.COMMAND, seq, rng.choice(
                [struct.pack("<HH", rng.randrange(900, 2100), rng.randrange(900, 2100)),
                 struct.pack("<HH", rng.randrange(0, 65536), rng.randrange(0, 65536))])))
        elif kind == 3:
            out.append(sp.encode_frame(sp.MsgType.ARM, seq, bytes((rng.choice([0, 1, 1, 2]),))))
        elif kind == 4:
            out.append(sp.encode_frame(sp.MsgType.ESTOP, seq, bytes((rng.choice([0, 0, 0, 1]),))))
        elif kind == 5:
            out.append(sp.encode_frame(sp.MsgType.CAL_SET, seq, struct.pack(
                "<BHHH", rng.choice([0, 1, 2]), *sorted(rng.randrange(700, 2300) for _ in range(3)))))
        elif kind == 6:
            out.append(sp.encode_frame(sp.MsgType.CAL_GET, seq, bytes((rng.choice([0, 1, 5]),))))
        elif kind == 7:
            out.append(rng.choice([sp.encode_heartbeat(seq), sp.encode_hello(seq)]))
        else:
            out.append(sp.encode_ack(seq, sp.MsgType.ARM))  # a board->host type: ignored
    return out


def test_emulator_replies_byte_identical_to_firmware_state_machine(firmware):
    """Shared vectors: the same frames into BoardLogic and into board.c (host build)."""
    frames = _host_frames(random.Random(5), 3000)
    proc = subprocess.run([str(firmware.proto_host), "vectors"], input=b"".join(frames),
                          capture_output=True, check=True)
    c_replies = proc.stdout.decode().splitlines()[:-1]  # last line: parser stats
    logic = BoardLogic(board_id="uno-pwm")
    parser = sp.FrameParser()
    py_replies = []
    for now_ms, frame in enumerate(parser.feed(b"".join(frames)), start=1):
        py_replies.append(b"".join(logic.handle(frame, now_ms)).hex())
    assert len(c_replies) == len(py_replies) == len(frames)
    mismatches = [(i, c, p) for i, (c, p) in enumerate(zip(c_replies, py_replies)) if c != p]
    assert not mismatches, mismatches[:5]
    kinds = {bytes.fromhex(r)[2] for r in c_replies if r}
    assert {sp.MsgType.ACK, sp.MsgType.COMMAND_ACK, sp.MsgType.CAL_DATA, sp.MsgType.VERSION} <= kinds


def test_board_goes_neutral_when_the_bridge_process_is_killed(firmware, ros_context):
    """SIGKILL the real pwm_bridge_node process mid-drive: no final neutral frame, only the board."""
    import signal

    from conftest import BridgeProcess

    with SimBoard(firmware) as board, BridgeProcess(ros_context, board.port_path, "kill_probe") as bridge:
        assert bridge.drive_until(lambda: board.pwm_us == (1750, 1600)), "the bridge process never drove the board"
        idle_before = len(board.rx_idle_sim_us)
        for _ in range(5):  # keep commanding right up to the kill
            bridge.command(0.5, 0.5)
            bridge.executor.spin_once(timeout_sec=0.02)
        bridge.process.send_signal(signal.SIGKILL)
        bridge.process.wait(timeout=5.0)
        killed_at = time.monotonic()
        hit = board.wait_pwm(lambda s, t: (s, t) == (1500, 1500), 3.0)
        assert hit, f"board still outputs {board.pwm_us} after the bridge was killed"
        last_rx_us = board.wait_rx_idle(idle_before + 1, 1.0)
        dt_sim = (hit[3] - last_rx_us) / 1e6
        print(f"\nbridge killed: board neutral {dt_sim * 1e3:.1f} ms (board time) after its last byte, "
              f"{(hit[0] - killed_at) * 1e3:.0f} ms (wall) after the kill")
        # millis() advances in 1.024 ms timer0 steps (and skips a value every 42 steps), so a
        # 250 ms millis() difference can be a few µs short of 250 ms of board time.
        assert WATCHDOG_S - 0.002 <= dt_sim <= WATCHDOG_S + 0.02
        assert hit[0] - killed_at <= WATCHDOG_S + 0.35

def test_hardware_watchdog_resets_a_hung_mcu_to_neutral(firmware):
    """A hung main loop would leave Timer1 driving the last pulses; the AVR WDT must reset it.

    Uses the test build (PWM_BRIDGE_TEST_HOOKS), where HEARTBEAT seq 0xEE hangs the loop."""
    with SimBoard(firmware, elf=firmware.elf_test_hooks) as board:
        link = connect(board)
        try:
            link.send(sp.encode_arm, True)
            for _ in range(10):
                link.send(sp.encode_command, 1800, 1650)
                time.sleep(0.02)
            assert board.wait_pwm(lambda s, t: (s, t) == (1800, 1650), 1.0)
            idle_before = len(board.rx_idle_sim_us)
            link.port.write(sp.encode_heartbeat(0xEE))  # the MCU hangs with the pins still driven
            off = board.wait_pwm(lambda s, t: (s, t) == (0, 0), 2.0)
            assert off, "pins never released: the hardware watchdog did not reset the hung MCU"
            hang_us = board.wait_rx_idle(idle_before + 1, 1.0)
            dt_ms = (off[3] - hang_us) / 1e3
            print(f"\nhung MCU: hardware watchdog reset after {dt_ms:.1f} ms (board time; WDTO_120MS)")
            assert 100.0 <= dt_ms <= 200.0
            assert board.wait_pwm(lambda s, t: (s, t) == (1500, 1500), 2.0), "no neutral after the reboot"
            t = link.telemetry(lambda t: (t.steering_us, t.throttle_us) == (1500, 1500), timeout_s=3.0)
            assert (t.mode, t.armed) == (sp.MODE_DISARMED, False)  # rebooted: disarmed until the host arms
        finally:
            link.close()


def test_firmware_streams_mpu6050_imu_and_bridge_publishes_it(firmware, ros_context):
    """Virtual MPU-6050 on the simulated I2C bus -> firmware IMU frames -> imu/data_raw."""
    from conftest import spin_until
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Imu

    from edge_inference.ros.nodes.pwm_bridge_node import PwmBridgeNode
    from edge_inference.ros.qos import sensor_qos

    with SimBoard(firmware, imu=True) as board:
        link = connect(board)
        try:
            at_rest = sp.decode_imu(link.wait(sp.MsgType.IMU, timeout_s=2.0))
            assert at_rest.accel == pytest.approx((0.0, 0.0, 9.80665), abs=2e-3)
            board.set_imu(accel=(1.5, -2.0, 9.0), gyro=(0.25, -0.5, 1.0))
            end = time.monotonic() + 2.0
            stamps = []
            while time.monotonic() < end:
                s = sp.decode_imu(link.wait(sp.MsgType.IMU, timeout_s=1.0))
                stamps.append(s.t_us)
                if s.accel[0] > 1.0:
                    break
            # quantized like the real part: 1/16384 g and 1/131 °/s per LSB
            assert s.accel == pytest.approx((1.5, -2.0, 9.0), abs=2e-3)
            assert s.gyro == pytest.approx((0.25, -0.5, 1.0), abs=2e-4)
            samples = [sp.decode_imu(link.wait(sp.MsgType.IMU, timeout_s=1.0)).t_us for _ in range(10)]
            period_ms = np.median(np.diff(samples)) / 1e3
            assert 19.0 <= period_ms <= 21.5, period_ms  # 50 Hz on the board clock
        finally:
            link.close()

        node = PwmBridgeNode(context=ros_context, parameter_overrides=[
            Parameter("serial_port", value=board.port_path), Parameter("link_timeout", value=2.0)])
        probe = Node("imu_probe", context=ros_context)
        got = []
        probe.create_subscription(Imu, "imu/data_raw", got.append, sensor_qos(50))
        ex = SingleThreadedExecutor(context=ros_context)
        ex.add_node(node)
        ex.add_node(probe)
        try:
            assert spin_until(ex, lambda: len(got) >= 5, 10.0)
            imu = got[-1]
            assert imu.linear_acceleration.x == pytest.approx(1.5, abs=2e-3)
            assert imu.angular_velocity.z == pytest.approx(1.0, abs=2e-4)
        finally:
            ex.shutdown()
            node.destroy_node()
            probe.destroy_node()
