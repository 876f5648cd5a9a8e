"""sim_node: the simulated rover's world, attached to the serial link as the PWM board.

Each physics tick it reads what the board applies (PWM µs from the bridge, through
the calibration back to a normalized command), steps the bicycle model and
publishes the pose (`sim/pose`, the camera's sim source renders from it), IMU and
magnetometer samples, and the ground-truth behavior label (`behavior/label`).
All stamps come from the node clock, so `use_sim_time` works unchanged.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Imu, MagneticField

from edge_inference.core.config_fields import param
from edge_inference.ros.diagnostics import ERROR, OK, WARN, FrequencyTask, Updater
from edge_inference.ros.params import LiveParams
from edge_inference.ros.qos import reliable_qos, sensor_qos
from edge_inference.ros.spin import destroy_on_failure, spin_node
from edge_inference.sim.behaviors import BEHAVIOR_CLASSES, BehaviorRules
from edge_inference.sim.board_link import BOARD_KINDS
from edge_inference.sim.track import SHAPES, TrackConfig
from edge_inference.sim.world import World

COMMAND_SOURCES = ("board", "topic")


@dataclass
class SimConfig:
    track_shape: str = param("oval", "lane shape", choices=SHAPES, read_only=True)
    track_straight_m: float = param(6.0, "oval straight length, m", range=(0.0, 100.0), read_only=True)
    track_radius_m: float = param(2.5, "bend radius, m", range=(0.5, 50.0), read_only=True)
    track_width_m: float = param(0.9, "lane width, m", range=(0.2, 5.0), read_only=True)
    physics_rate_hz: float = param(100.0, "dynamics step rate, Hz", range=(10.0, 1000.0), read_only=True)
    pose_rate_hz: float = param(50.0, "sim/pose publish rate, Hz", range=(1.0, 1000.0), read_only=True)
    imu_rate_hz: float = param(50.0, "imu/data_raw + imu/mag rate, Hz", range=(1.0, 1000.0), read_only=True)
    label_rate_hz: float = param(10.0, "behavior/label rate, Hz", range=(0.1, 100.0), read_only=True)
    command_source: str = param("board", "board: a pty board emulator the bridge talks to; "
                                "topic: vehicle/command directly (no bridge)", choices=COMMAND_SOURCES,
                                read_only=True)
    board: str = param("emulator", "simulated board: emulator (Python, same state machine) or firmware "
                       "(the real sketch in simavr)", choices=BOARD_KINDS, read_only=True)
    board_port: str = param("", "path of the simulated board's serial port (a symlink to a pty) that the "
                            "bridge opens; empty: a fresh temporary path (logged)", read_only=True)
    calibration_file: str = param("", "PWM calibration YAML (the bridge's); empty: config/calibration.yaml "
                                  "or the defaults", read_only=True)
    board_watchdog_ms: int = param(250, "board neutral after this long without a command, ms",
                                   range=(10, 10000), read_only=True)
    command_timeout: float = param(0.25, "topic mode: neutral after this long without a command, s",
                                   range=(0.01, 10.0))
    seed: int = param(0, "IMU noise seed", read_only=True)
    behavior_classes: list[str] = param(list(BEHAVIOR_CLASSES), "class names of behavior/label, in "
                                        "class_id order", read_only=True)
    frame_id: str = param("map", "frame of sim/pose")
    rate_tolerance: float = param(0.2, "physics step rate deviation before diagnostics WARN (fraction)",
                                  range=(0.0, 1.0), read_only=True)


CONFIG_CLASS = SimConfig


def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation about +z."""
    return 0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)


class SimNode(Node):
    @destroy_on_failure
    def __init__(self, **kwargs):
        super().__init__("sim_node", **kwargs)
        from edge_inference_msgs.msg import BehaviorState, VehicleCommand
        self._BehaviorState = BehaviorState
        self.live_params = LiveParams(self)  # read per tick; the rest are read-only
        c = self.live_params.declare(SimConfig, "cfg", live=("command_timeout", "frame_id"))
        self.world = World(TrackConfig(shape=c.track_shape, straight_m=c.track_straight_m,
                                       radius_m=c.track_radius_m, width_m=c.track_width_m),
                           rules=BehaviorRules(class_names=tuple(c.behavior_classes)), seed=c.seed)
        self.board = None
        self._cmd, self._cmd_time = (0.0, 0.0), -math.inf
        if c.command_source == "board":
            from edge_inference.sim.board_link import BoardLink, load_sim_calibration
            self.board = BoardLink(c.board_port or None, load_sim_calibration(c.calibration_file),
                                   watchdog_ms=c.board_watchdog_ms, kind=c.board).start()
            self.get_logger().info(f"simulated board ({c.board}) on {self.board.port_path}")
        else:
            self.create_subscription(VehicleCommand, "vehicle/command", self._on_command, reliable_qos())
        self.pub_pose = self.create_publisher(PoseStamped, "sim/pose", sensor_qos())
        self.pub_imu = self.create_publisher(Imu, "imu/data_raw", sensor_qos())
        self.pub_mag = self.create_publisher(MagneticField, "imu/mag", sensor_qos())
        self.pub_label = self.create_publisher(BehaviorState, "behavior/label", reliable_qos())
        self.applied = (0.0, 0.0)          # normalized command the car currently obeys
        self.steps = FrequencyTask(c.physics_rate_hz, tolerance=c.rate_tolerance)
        self.diag = Updater(self, hardware_id="sim")
        self.diag.add("physics rate", self.steps)
        self.diag.add("board", self._board_status)
        self._last_ns: int | None = None
        self._next = {"pose": 0, "imu": 0, "label": 0}
        self.timer = self.create_timer(1.0 / c.physics_rate_hz, self._on_tick)

    @property
    def port_path(self) -> str:
        """Where the bridge must connect (board mode)."""
        return self.board.port_path if self.board else ""

    def _on_command(self, msg) -> None:
        if not (math.isfinite(msg.steering) and math.isfinite(msg.throttle)):
            self.get_logger().warn("non-finite vehicle/command ignored", throttle_duration_sec=2.0)
            return
        self._cmd, self._cmd_time = (float(msg.steering), float(msg.throttle)), time.monotonic()

    def _read_command(self) -> tuple[float, float]:
        if self.board is not None:
            steering, throttle, _, _ = self.board.applied()
            return steering, throttle
        if time.monotonic() - self._cmd_time > self.cfg.command_timeout:
            return 0.0, 0.0
        return self._cmd

    def _on_tick(self) -> None:
        now = self.get_clock().now()
        ns = now.nanoseconds
        if self._last_ns is None:
            self._last_ns = ns
            return
        dt = (ns - self._last_ns) * 1e-9
        if dt <= 0:
            return
        self._last_ns = ns
        # a stalled executor must not teleport the car: integrate in bounded sub-steps
        self.applied = self._read_command()
        n_sub = max(1, math.ceil(dt * self.cfg.physics_rate_hz / 2))
        for _ in range(min(n_sub, 20)):
            self.world.step(*self.applied, dt / n_sub)
        self.steps.tick()
        stamp = now.to_msg()
        if ns >= self._next["pose"]:
            self._next["pose"] = ns + int(1e9 / self.cfg.pose_rate_hz)
            self._publish_pose(stamp)
        if ns >= self._next["imu"]:
            self._next["imu"] = ns + int(1e9 / self.cfg.imu_rate_hz)
            self._publish_imu(stamp)
        if ns >= self._next["label"]:
            self._next["label"] = ns + int(1e9 / self.cfg.label_rate_hz)
            self._publish_label(stamp)

    def _publish_pose(self, stamp) -> None:
        s = self.world.state
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.cfg.frame_id
        msg.pose.position.x, msg.pose.position.y = s.x, s.y
        q = yaw_to_quaternion(s.yaw)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = q
        self.pub_pose.publish(msg)

    def _publish_imu(self, stamp) -> None:
        r = self.world.read_imu()
        imu = Imu()
        imu.header.stamp, imu.header.frame_id = stamp, "imu_link"
        imu.orientation_covariance[0] = -1.0  # REP-145: no orientation estimate
        imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z = map(float, r.accel)
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = map(float, r.gyro)
        self.pub_imu.publish(imu)
        mag = MagneticField()
        mag.header = imu.header
        mag.magnetic_field.x, mag.magnetic_field.y, mag.magnetic_field.z = map(float, r.mag)
        self.pub_mag.publish(mag)

    def _publish_label(self, stamp) -> None:
        names = list(self.cfg.behavior_classes)
        label = self.world.behavior()
        msg = self._BehaviorState()
        msg.header.stamp = stamp
        msg.class_id = names.index(label)
        msg.label = label
        msg.confidence = 1.0
        msg.probabilities = [1.0 if n == label else 0.0 for n in names]
        msg.class_names = names
        msg.fsq_code = -1
        self.pub_label.publish(msg)

    def _board_status(self, stat) -> None:
        s = self.world.state
        stat.add("x_m", s.x)
        stat.add("y_m", s.y)
        stat.add("speed_mps", s.v)
        stat.add("command", f"{self.applied[0]:+.2f} {self.applied[1]:+.2f}")
        if self.board is None:
            stat.summary(OK, "driven by vehicle/command")
            return
        stat.add("port", self.board.port_path)
        stat.add("board", self.board.kind)
        stat.add("applied_us", "{} {}".format(*self.board.applied_us()))
        mode = self.board.mode
        from edge_inference.core import serial_protocol as sp
        if self.board.commands_received == 0:
            stat.summary(ERROR, "no command frames from the bridge yet")
        elif mode is not None and mode != sp.MODE_AUTO:
            stat.summary(WARN, f"board not in auto mode (mode {mode}): car held at neutral")
        else:
            stat.summary(OK, "board applying bridge commands")

    def destroy_node(self):
        # Also runs on a node whose __init__ raised (bad parameter): rclpy's context destroys every node it tracks.
        if getattr(self, "board", None) is not None:
            self.board.stop()
            self.board = None
        return super().destroy_node()


def main(args=None):
    spin_node(SimNode, args)


if __name__ == "__main__":
    main()
