"""pwm_bridge_node: vehicle/command -> PWM frames over serial; board telemetry -> vehicle/state.

The ROS shell around ``bridge_core`` (watchdog, e-stop, arm, link state) and
``serial_protocol`` (frames). A reader thread owns the serial port: it opens it,
does the VERSION handshake, pushes the calibration limits to the board, reads
frames and reconnects with backoff after any serial failure. A timer writes one
command frame per ``1/send_rate`` s: the latest valid command, or neutral.
"""
from __future__ import annotations

import math
import threading
import time

import serial
from rclpy.node import Node
from sensor_msgs.msg import Imu
from std_srvs.srv import SetBool

from edge_inference.core import serial_protocol as sp
from edge_inference.core.bridge_core import (
    LINK_CONNECTING,
    LINK_DOWN,
    LINK_NAMES,
    LINK_UP,
    Backoff,
    BridgeConfig,
    BridgeCore,
    LinkMonitor,
    RttTracker,
)
from edge_inference.core.pwm_mapping import PwmMapper, default_calibration_path, load_calibration
from edge_inference.ros.diagnostics import ERROR, OK, WARN, FrequencyTask, LatencyTask, Updater
from edge_inference.ros.params import LiveParams
from edge_inference.ros.qos import reliable_qos, sensor_qos
from edge_inference.ros.spin import destroy_on_failure, spin_node
from edge_inference_msgs.msg import VehicleCommand, VehicleState

CONFIG_CLASS = BridgeConfig
HELLO_RETRY_S = 0.25


class PwmBridgeNode(Node):
    @destroy_on_failure
    def __init__(self, **kwargs):
        super().__init__("pwm_bridge_node", **kwargs)
        # command_timeout (the watchdog) and frame ids apply at run time; the rest are read-only
        self.live_params = LiveParams(self)
        self.live_params.declare(BridgeConfig, "cfg", live=("command_timeout", "frame_id", "imu_frame_id"),
                                 apply=self._apply_config)
        cal_path = self.cfg.calibration_file or default_calibration_path()
        self.calibration = load_calibration(cal_path)
        self.mapper = PwmMapper(self.calibration)
        self.core = BridgeCore(self.mapper, self.cfg.command_timeout)
        self.core.set_arm(self.cfg.arm_on_connect)
        self.link = LinkMonitor(self.cfg.link_timeout, self.cfg.handshake_timeout,
                                Backoff(self.cfg.reconnect_initial_s, self.cfg.reconnect_max_s))
        self.rtt = RttTracker()
        self.parser = sp.FrameParser()
        self.seq = sp.SeqCounter()
        self.version: sp.Version | None = None
        self.telemetry: sp.Telemetry | None = None
        self.board_rx_errors = 0
        self.board_watchdog_trips = 0  # times the board itself went to failsafe (no command in 250 ms)
        self.frames_sent = 0
        self.write_timeouts = 0  # writes that did not finish within write_timeout (board not draining)
        self.last_output: tuple[int, int, str] | None = None
        self._port: serial.Serial | None = None
        self._io_lock = threading.Lock()       # serializes writes and open/close
        self._state_lock = threading.Lock()    # core + link state shared with the reader thread
        self._board_armed_sent: bool | None = None
        self._board_estop_sent: bool | None = None
        self._hello_sent_at = 0.0
        self._errors_at_last_state = 0

        self.pub_state = self.create_publisher(VehicleState, "vehicle/state", reliable_qos(10))
        self.pub_imu = self.create_publisher(Imu, "imu/data_raw", sensor_qos(10))
        self.create_subscription(VehicleCommand, "vehicle/command", self._on_command, reliable_qos(10))
        self.create_service(SetBool, "bridge/estop", self._on_estop)
        self.create_service(SetBool, "bridge/arm", self._on_arm)

        self.cmd_rate = FrequencyTask(self.cfg.send_rate, tolerance=self.cfg.rate_tolerance)
        self.rtt_task = LatencyTask(warn_ms=self.cfg.rtt_warn_ms, error_ms=self.cfg.rtt_error_ms)
        self.diag = Updater(self, hardware_id=f"pwm_board:{self.cfg.serial_port}")
        self.diag.add("serial link", self._link_status)
        self.diag.add("command frames", self.cmd_rate)
        self.diag.add("round trip", self.rtt_task)
        self.diag.add("safety", self._safety_status)

        self._running = True
        self._reader = threading.Thread(target=self._reader_loop, name="pwm_bridge-reader", daemon=True)
        self._reader.start()
        self.send_timer = self.create_timer(1.0 / self.cfg.send_rate, self._on_send_timer)
        self.heartbeat_timer = self.create_timer(1.0 / self.cfg.heartbeat_rate, self._on_heartbeat)

    def _apply_config(self, cfg: BridgeConfig, changed: set[str]) -> None:
        with self._state_lock:
            self.core.command_timeout = cfg.command_timeout

    # ---------------------------------------------------------------- ROS callbacks
    def _on_command(self, msg: VehicleCommand) -> None:
        with self._state_lock:
            reason = self.core.on_command(msg.steering, msg.throttle, time.monotonic())
        if reason:
            self.get_logger().warning(f"rejected vehicle/command: {reason}; sending neutral",
                                      throttle_duration_sec=1.0)

    def _on_estop(self, req: SetBool.Request, resp: SetBool.Response) -> SetBool.Response:
        with self._state_lock:
            self.core.set_estop(req.data)
        self._sync_board_state(force=True)
        resp.success = True
        if req.data:
            self._send(sp.encode_command, *self.calibration.neutral_us())  # don't wait for the next tick
            resp.message = "e-stop latched: neutral and disarmed"
            self.get_logger().warning(resp.message)
        else:
            resp.message = "e-stop released (still disarmed: call bridge/arm)"
            self.get_logger().info(resp.message)
        self.diag.force_update()
        return resp

    def _on_arm(self, req: SetBool.Request, resp: SetBool.Response) -> SetBool.Response:
        with self._state_lock:
            reason = self.core.set_arm(req.data)
        resp.success = reason is None
        resp.message = reason or ("armed" if req.data else "disarmed")
        if reason is None:
            self._sync_board_state(force=True)
        return resp

    def _on_send_timer(self) -> None:
        now = time.monotonic()
        with self._state_lock:
            out = self.core.output(now)
            link_up = self.link.state == LINK_UP
        self.last_output = (out.steering_us, out.throttle_us, out.reason)
        if link_up:
            self._sync_board_state()
            seq = self._send(sp.encode_command, out.steering_us, out.throttle_us)
            if seq is not None:
                self.rtt.sent(sp.MsgType.COMMAND, seq, now)
                self.cmd_rate.tick()

    def _on_heartbeat(self) -> None:
        if self.link.state == LINK_DOWN:
            self.pub_state.publish(self._state_msg())  # keep reporting link=DOWN
            return
        seq = self._send(sp.encode_heartbeat)
        if seq is not None:
            self.rtt.sent(sp.MsgType.HEARTBEAT, seq, time.monotonic())

    # ---------------------------------------------------------------- serial I/O
    def _send(self, encoder, *args) -> int | None:
        """Encode with a fresh sequence number and write; returns the seq, None when not sent."""
        with self._io_lock:
            port = self._port
            if port is None:
                return None
            seq = self.seq.next()
            try:
                port.write(encoder(seq, *args))
            except serial.SerialTimeoutException:
                # Not a dead link: pyserial also raises this when the writing thread was merely
                # descheduled past the deadline. A truly stuck board stops answering and
                # link_timeout (checked by the reader) reconnects; a partial frame fails its CRC.
                self.write_timeouts += 1
                self.get_logger().warning(f"serial write timed out ({self.write_timeouts} so far)",
                                          throttle_duration_sec=5.0)
                return None
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's fd vanished under a concurrent close
                self._fail(f"serial write failed: {exc}")
                return None
            self.frames_sent += 1
            return seq

    def _sync_board_state(self, force: bool = False) -> None:
        """Send e-stop and arm state to the board when they differ from what it was told."""
        with self._state_lock:
            estop, armed = self.core.estop_latched, self.core.arm_requested
        if force or estop != self._board_estop_sent:
            if self._send(sp.encode_estop, estop) is not None:
                self._board_estop_sent = estop
        if force or armed != self._board_armed_sent:
            if self._send(sp.encode_arm, armed) is not None:
                self._board_armed_sent = armed

    def _open(self) -> None:
        now = time.monotonic()
        try:
            port = serial.Serial(self.cfg.serial_port, self.cfg.baudrate, timeout=0.02,
                                 write_timeout=self.cfg.write_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            with self._state_lock:
                self.link.on_failure(now, f"open {self.cfg.serial_port}: {exc}")
            self.get_logger().warning(f"cannot open {self.cfg.serial_port}: {exc}; retrying",
                                      throttle_duration_sec=5.0)
            return
        with self._io_lock:
            self._port = port
        self.parser.reset()
        self._board_armed_sent = self._board_estop_sent = None
        with self._state_lock:
            self.link.on_open(now)
        self._hello_sent_at = now
        self._send(sp.encode_hello)

    def _fail(self, reason: str) -> None:
        """Close the port and schedule a reopen (called with or without _io_lock held)."""
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                self.get_logger().debug(f"closing a failed port: {exc}")
            self.get_logger().warning(f"serial link lost: {reason}")
        with self._state_lock:
            self.link.on_failure(time.monotonic(), reason)
        self.version = None
        self.telemetry = None  # a reconnect must not report the old connection's state
        if port is not None:
            self.diag.force_update()  # link lost: the monitor hears it now, not at the next period

    def _reader_loop(self) -> None:
        while self._running:
            now = time.monotonic()
            if self.link.should_open(now):
                self._open()
            port = self._port
            if port is None:
                time.sleep(0.02)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                with self._io_lock:
                    if self._port is port:
                        self._fail(f"serial read failed: {exc}")
                continue
            now = time.monotonic()
            for frame in self.parser.feed(data):
                self._on_frame(frame, now)
            if self.link.state == LINK_CONNECTING and now - self._hello_sent_at > HELLO_RETRY_S:
                self._hello_sent_at = now  # a board still booting (USB auto-reset) misses the first HELLO
                self._send(sp.encode_hello)
            with self._state_lock:
                reason = self.link.check(now)
            if reason:
                with self._io_lock:
                    if self._port is port:
                        self._fail(reason)

    def _on_frame(self, frame: sp.Frame, now: float) -> None:
        with self._state_lock:
            self.link.on_frame(now)
        t = frame.msg_type
        if t == sp.MsgType.VERSION:
            if self.link.state != LINK_CONNECTING:
                return  # the answer to a repeated HELLO: already connected
            version = sp.decode_version(frame)
            if version.protocol != sp.PROTOCOL_VERSION:
                with self._io_lock:
                    self._fail(f"board speaks protocol {version.protocol}, bridge {sp.PROTOCOL_VERSION}")
                return
            self.version = version
            self.get_logger().info(f"connected to {version} on {self.cfg.serial_port}")
            # The board only takes limits while disarmed (it may still be armed from before a
            # cable glitch); the send timer re-arms it if arming is requested.
            self._send(sp.encode_arm, False)
            for limits in self.calibration.board_limits():
                self._send(sp.encode_cal_set, limits)
            self._board_armed_sent = None
            with self._state_lock:
                self.link.on_handshake(now)
        elif t == sp.MsgType.TELEMETRY:
            telemetry = sp.decode_telemetry(frame)
            previous = self.telemetry
            if telemetry.mode == sp.MODE_FAILSAFE and (previous is None or previous.mode != sp.MODE_FAILSAFE):
                self.board_watchdog_trips += 1
            self.telemetry = telemetry
            self.board_rx_errors = self.telemetry.crc_errors
            self.pub_state.publish(self._state_msg())
        elif t in (sp.MsgType.COMMAND_ACK, sp.MsgType.HEARTBEAT_ACK):
            acked = sp.MsgType.COMMAND if t == sp.MsgType.COMMAND_ACK else sp.MsgType.HEARTBEAT
            ms = self.rtt.answered(acked, frame.seq, now)
            if ms is not None:
                self.rtt_task.record(ms)
        elif t == sp.MsgType.IMU:
            self.pub_imu.publish(self._imu_msg(sp.decode_imu(frame)))
        elif t == sp.MsgType.ACK:
            acked_type, status = sp.decode_ack(frame)
            if status != sp.ACK_OK:
                self.get_logger().warning(f"board refused {sp.MsgType(acked_type).name} (status {status})")

    # ---------------------------------------------------------------- messages
    def _state_msg(self) -> VehicleState:
        msg = VehicleState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.cfg.frame_id
        msg.link = self.link.state
        with self._state_lock:
            bridge_flags = self.core.output(time.monotonic()).flags
        t = self.telemetry
        if t is not None and self.link.state != LINK_DOWN:
            msg.steering_us, msg.throttle_us = t.steering_us, t.throttle_us
            msg.steering, msg.throttle = self.mapper.to_normalized(t.steering_us, t.throttle_us)
            msg.mode, msg.armed = t.mode, t.armed
            msg.failsafe_flags = t.flags | bridge_flags
            msg.rc_steering_us, msg.rc_throttle_us, msg.rc_mode_us = t.rc_steering_us, t.rc_throttle_us, t.rc_mode_us
            msg.loop_time_us = float(t.loop_time_us)
        else:
            msg.mode, msg.failsafe_flags = VehicleState.MODE_FAILSAFE, bridge_flags
        if self.parser.stats.errors != self._errors_at_last_state:  # bad frames since the last state
            self._errors_at_last_state = self.parser.stats.errors
            msg.failsafe_flags |= VehicleState.FLAG_CRC_ERRORS
        msg.rtt_ms = float(self.rtt.last_ms) if math.isfinite(self.rtt.last_ms) else 0.0
        return msg

    def _imu_msg(self, s: sp.ImuSample) -> Imu:
        msg = Imu()
        msg.header.stamp = self.get_clock().now().to_msg()  # board clock is not synced; stamp on arrival
        msg.header.frame_id = self.cfg.imu_frame_id
        msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = s.accel
        msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = s.gyro
        msg.orientation_covariance[0] = -1.0  # no orientation estimate (REP 145)
        return msg

    # ---------------------------------------------------------------- diagnostics
    def _link_status(self, stat) -> None:
        stat.add("port", self.cfg.serial_port)
        stat.add("link", LINK_NAMES[self.link.state])
        stat.add("firmware", str(self.version) if self.version else "unknown")
        stat.add("reconnects", self.link.reconnects)
        stat.add("frames_sent", self.frames_sent)
        stat.add("write_timeouts", self.write_timeouts)
        ps = self.parser.stats
        stat.add("frames_received", ps.frames)
        stat.add("rx_crc_errors", ps.crc_errors)
        stat.add("rx_bad_length", ps.bad_length)
        stat.add("rx_bad_end", ps.bad_end)
        stat.add("rx_garbage_bytes", ps.garbage_bytes)
        stat.add("board_rx_errors", self.board_rx_errors)
        if self.link.state != LINK_UP:
            stat.summary(ERROR, f"link {LINK_NAMES[self.link.state]}: {self.link.last_error or 'not connected'}")
        elif ps.errors or self.board_rx_errors:
            stat.summary(WARN, f"{ps.errors} bad frames received, {self.board_rx_errors} rejected by the board")
        else:
            stat.summary(OK, "link up")

    def _safety_status(self, stat) -> None:
        with self._state_lock:
            core = self.core
            stat.add("estop_latched", core.estop_latched)
            stat.add("arm_requested", core.arm_requested)
            stat.add("watchdog_trips", core.watchdog_trips)
            stat.add("board_watchdog_trips", self.board_watchdog_trips)
            stat.add("rejected_commands", core.rejected)
            stat.add("last_reject_reason", core.last_reject_reason)
            out = self.last_output
        if out:
            stat.add("output_us", f"{out[0]},{out[1]}")
            stat.add("output_reason", out[2])
        if self.telemetry is not None:
            stat.add("board_mode", sp.MODE_NAMES.get(self.telemetry.mode, str(self.telemetry.mode)))
            stat.add("board_flags", self.telemetry.flags)
        if core.estop_latched:
            stat.summary(WARN, "e-stop latched")
        elif out and out[2] == "rejected":
            stat.summary(ERROR, f"rejected command: {core.last_reject_reason}")
        elif out and out[2] == "timeout":
            stat.summary(WARN, f"no vehicle/command for > {self.cfg.command_timeout:.2f} s: neutral")
        else:
            stat.summary(OK, out[2] if out else "starting")

    def destroy_node(self) -> None:
        # Also runs on a node whose __init__ raised (bad parameter): rclpy's context destroys every node it tracks.
        if not hasattr(self, "_reader"):
            super().destroy_node()
            return
        self._running = False
        if self._reader.is_alive():
            self._reader.join(timeout=1.0)
        with self._io_lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.write(sp.encode_command(self.seq.next(), *self.calibration.neutral_us()))
                port.close()
            except (serial.SerialException, OSError) as exc:
                self.get_logger().warning(f"could not send a final neutral: {exc}")
        super().destroy_node()


def main(args=None):
    spin_node(PwmBridgeNode, args)
