"""pwm_bridge_node on real DDS against the board emulator on a pty.

Commands in -> frames on the pty -> the board applies PWM; commands stop -> neutral;
NaN -> neutral with a diagnostic; e-stop latches; the pty is unplugged mid-stream
and the bridge reconnects when the port returns; IMU samples come back as Imu.
"""
from __future__ import annotations

import math
import time

import pytest
from conftest import BridgeProcess, spin_until
from rclpy.parameter import Parameter

from edge_inference.core import serial_protocol as sp
from edge_inference.devices.board_emulator import BoardEmulator


@pytest.fixture
def rig(ros_context):
    """(executor, bridge node, probe node, board, received dict)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Imu

    from edge_inference.ros.nodes.pwm_bridge_node import PwmBridgeNode
    from edge_inference.ros.qos import reliable_qos, sensor_qos
    from edge_inference_msgs.msg import VehicleCommand, VehicleState

    board = BoardEmulator().start()
    node = PwmBridgeNode(context=ros_context, parameter_overrides=[
        Parameter("serial_port", value=board.port_path), Parameter("arm_on_connect", value=True),
        Parameter("reconnect_initial_s", value=0.05), Parameter("reconnect_max_s", value=0.2),
        Parameter("link_timeout", value=2.0)])  # 2 shared cores: don't drop the link on a stall
    probe = Node("bridge_probe", context=ros_context)
    got = {"state": [], "imu": []}
    probe.create_subscription(VehicleState, "vehicle/state", got["state"].append, reliable_qos(50))
    probe.create_subscription(Imu, "imu/data_raw", got["imu"].append, sensor_qos(50))
    got["pub"] = probe.create_publisher(VehicleCommand, "vehicle/command", reliable_qos(10))
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    yield ex, node, probe, board, got
    ex.shutdown()
    node.destroy_node()
    probe.destroy_node()
    board.stop()


def _command(steering: float, throttle: float):
    from edge_inference_msgs.msg import VehicleCommand
    return VehicleCommand(steering=steering, throttle=throttle, source=VehicleCommand.SOURCE_POLICY)


def _drive(ex, got, steering, throttle, predicate, timeout_s):
    """Publish a command every 20 ms until ``predicate()`` or timeout."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got["pub"].publish(_command(steering, throttle))
        if spin_until(ex, predicate, 0.02):
            return True
    return predicate()


def test_command_reaches_board_and_silence_goes_neutral(rig):
    from edge_inference_msgs.msg import VehicleState
    ex, node, _, board, got = rig
    # calibration.yaml: steering 1000..1500..2000, throttle 1300..1500..1700 (deadband 0.05)
    assert _drive(ex, got, 0.5, 0.5, lambda: board.applied_us == (1750, 1600), 10.0), board.applied_us
    assert board.mode == sp.MODE_AUTO and board.armed
    assert spin_until(ex, lambda: any(s.link == VehicleState.LINK_UP and s.steering_us == 1750
                                      for s in got["state"]), 2.0)
    assert spin_until(ex, lambda: node.rtt.samples, 2.0)
    assert 0.0 < node.rtt.samples[-1] < 200.0
    # commands stop: the bridge itself sends neutral after command_timeout (0.2 s). Command
    # again first: the waits above may have outlasted the timeout already.
    assert _drive(ex, got, 0.5, 0.5, lambda: board.applied_us == (1750, 1600) and not node.core.timed_out(
        time.monotonic()), 5.0)
    trips, t0 = node.core.watchdog_trips, time.monotonic()
    assert spin_until(ex, lambda: board.applied_us == (1500, 1500), 2.0)
    dt = time.monotonic() - t0
    assert dt < 0.2 + 0.4, f"neutral after {dt:.3f} s"
    assert board.mode == sp.MODE_AUTO, "the bridge, not the board watchdog, went neutral"
    assert node.core.watchdog_trips == trips + 1
    assert spin_until(ex, lambda: got["state"][-1].failsafe_flags & VehicleState.FLAG_BRIDGE_TIMEOUT, 2.0)
    diag = {s.name.split(": ", 1)[1]: s for s in node.diag.collect()}
    link = dict(diag["serial link"].values)
    assert diag["serial link"].level == 0 and link["link"] == "up" and int(link["frames_received"]) > 0
    assert float(dict(diag["round trip"].values)["latency_ms_p50"]) > 0.0
    assert dict(diag["safety"].values)["watchdog_trips"] == str(trips + 1)
    # the bridge stalls (no frames at all): the board's own watchdog takes over, and it is reported
    node.send_timer.cancel()
    assert spin_until(ex, lambda: board.mode == sp.MODE_FAILSAFE and node.board_watchdog_trips == 1, 3.0), \
        (board.mode, node.board_watchdog_trips)
    node.send_timer.reset()
    assert spin_until(ex, lambda: board.mode == sp.MODE_AUTO, 2.0)
    # line noise from the board: counted, flagged in vehicle/state and diagnostics, link stays up
    board.inject_bytes(b"\xaa\x04\x01\x07\x00\x00\x00\x00\x12\x34\x55" + bytes(range(0, 256, 7)))
    assert spin_until(ex, lambda: got["state"][-1].failsafe_flags & VehicleState.FLAG_CRC_ERRORS, 2.0)
    stat = [s for s in node.diag.collect() if s.name.endswith("serial link")][0]
    assert stat.level == 1 and "bad frames received" in stat.message
    assert node.parser.stats.crc_errors == 1 and node.link.state == 2


def test_nan_rejected_and_estop_latches(rig):
    from std_srvs.srv import SetBool
    ex, node, probe, board, got = rig
    assert _drive(ex, got, -1.0, 1.0, lambda: board.applied_us == (1000, 1700), 10.0), board.applied_us
    # the bridge itself must decide neutral (on a starved host the board's own 250 ms
    # watchdog could make the board neutral first, before the bridge's next send tick)
    assert _drive(ex, got, math.nan, 0.5, lambda: node.last_output is not None and node.last_output[2] == "rejected"
                  and board.applied_us == (1500, 1500), 2.0), (node.last_output, board.applied_us)
    assert node.core.rejected >= 1 and "not finite" in node.core.last_reject_reason
    stat = [s for s in node.diag.collect() if s.name.endswith("safety")][0]
    assert stat.level == 2 and "not finite" in stat.message
    assert _drive(ex, got, 0.0, 2.0, lambda: node.core.last_reject_reason.startswith("throttle=2.000"), 2.0)
    assert board.applied_us == (1500, 1500)

    client = probe.create_client(SetBool, "bridge/estop")
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(SetBool.Request(data=True))
    assert spin_until(ex, future.done, 5.0) and future.result().success
    # valid commands keep coming, but the latch holds neutral and disarms the board
    assert _drive(ex, got, 0.8, 0.8, lambda: board.mode == sp.MODE_ESTOP, 2.0), board.mode
    assert not _drive(ex, got, 0.8, 0.8, lambda: board.applied_us != (1500, 1500), 0.5)
    arm = probe.create_client(SetBool, "bridge/arm")
    future = arm.call_async(SetBool.Request(data=True))
    assert spin_until(ex, future.done, 5.0) and not future.result().success
    assert "e-stop" in future.result().message


def test_unplug_reconnects_and_imu_streams(rig):
    from edge_inference_msgs.msg import VehicleState
    ex, node, _, board, got = rig
    assert _drive(ex, got, 0.2, 0.0, lambda: board.applied_us[0] == 1600, 10.0)
    board.unplug()  # mid-stream: commands are still being published
    assert _drive(ex, got, 0.2, 0.0, lambda: node.link.state == 0 and got["state"]
                  and got["state"][-1].link == VehicleState.LINK_DOWN, 5.0)
    reconnects = node.link.reconnects
    time.sleep(0.3)  # the bridge keeps retrying (and failing) while the port is gone
    board.replug()
    assert _drive(ex, got, 0.2, 0.0, lambda: board.applied_us[0] == 1600, 10.0), board.applied_us
    assert node.link.reconnects >= reconnects and node.version is not None
    assert spin_until(ex, lambda: got["state"][-1].link == VehicleState.LINK_UP, 2.0)

    board.push_imu(accel=(0.5, -0.25, 9.81), gyro=(0.0, 0.0, 1.5))
    assert spin_until(ex, lambda: got["imu"], 3.0)
    imu = got["imu"][-1]
    assert imu.linear_acceleration.z == pytest.approx(9.81, abs=1e-5)
    assert imu.angular_velocity.z == pytest.approx(1.5)
    assert imu.header.frame_id == "imu_link"


def test_write_timeout_is_counted_not_a_link_failure(ros_context):
    """A board that stops draining its UART makes writes time out: each is counted and
    dropped, the port stays open, and sending resumes once the board reads again
    (link_timeout, not a write, decides when the link is dead)."""
    import os
    import tty

    from edge_inference.core.bridge_core import LINK_DOWN
    from edge_inference.ros.nodes.pwm_bridge_node import PwmBridgeNode

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    node = PwmBridgeNode(context=ros_context, parameter_overrides=[
        Parameter("serial_port", value=os.ttyname(slave)), Parameter("write_timeout", value=0.05),
        Parameter("handshake_timeout", value=10.0), Parameter("link_timeout", value=10.0)])
    try:
        node.send_timer.cancel()
        node.heartbeat_timer.cancel()
        end = time.monotonic() + 10.0
        while node._port is None and time.monotonic() < end:
            time.sleep(0.01)
        port = node._port
        assert port is not None, "the bridge did not open the pty"
        block = lambda seq: b"\x00" * 4096  # noqa: E731  (nobody reads the master: the pty fills)
        for _ in range(1000):
            if node._send(block) is None:
                break
        assert node.write_timeouts >= 1
        assert node._port is port and node.link.state != LINK_DOWN
        link = dict([s for s in node.diag.collect() if s.name.endswith("serial link")][0].values)
        assert int(link["write_timeouts"]) == node.write_timeouts
        while True:  # the board drains its buffer again
            try:
                if not os.read(master, 65536):
                    break
            except BlockingIOError:
                break
        assert node._send(sp.encode_heartbeat) is not None
    finally:
        node.destroy_node()
        os.close(master)
        os.close(slave)


def test_bridge_process_keeps_the_board_watchdog_fed(ros_context):
    """The bridge executable as deployed (its own process, `spin_node`) while commands
    stream at 30 Hz: command frames reach the board steadily and its 250 ms watchdog never
    trips."""
    import threading

    samples: list[tuple[float, int, int]] = []  # (time, commands received, mode)
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            samples.append((time.monotonic(), board.commands_received, board.mode))
            time.sleep(0.005)

    with BoardEmulator() as board, BridgeProcess(ros_context, board.port_path, "feed_probe") as bridge:
        assert bridge.drive_until(lambda: board.applied_us == (1750, 1600)), "the bridge process never drove the board"
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t_end = time.monotonic() + 4.0
        while time.monotonic() < t_end:
            bridge.command(0.5, 0.5)
            time.sleep(1 / 30)
        stop.set()
        watcher.join()
    t = [s[0] for s in samples]
    counts = [s[1] for s in samples]
    changes = [t[i] for i in range(1, len(t)) if counts[i] != counts[i - 1]]
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    rate = (counts[-1] - counts[0]) / (t[-1] - t[0])
    print(f"\ncommand frames at the board: {rate:.1f} /s (send_rate 50), longest gap {max(gaps) * 1e3:.0f} ms")
    assert not any(s[2] == sp.MODE_FAILSAFE for s in samples), "the board's watchdog tripped while driving"
    assert max(gaps) < 0.25 and rate > 35.0
