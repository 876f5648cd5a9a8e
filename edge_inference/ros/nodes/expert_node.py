"""expert_node: the simulator's pure-pursuit driver as a ROS node (sim/pose -> vehicle/command).

It stands in for policy_node in closed-loop tests and demonstrations: it sees the
true pose, never the image, and publishes the same VehicleCommand a policy would,
so the bridge -> serial -> board -> dynamics path is exercised unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node

from edge_inference.core.config_fields import param
from edge_inference.ros.params import LiveParams
from edge_inference.ros.qos import reliable_qos, sensor_qos
from edge_inference.ros.spin import destroy_on_failure, spin_node
from edge_inference.ros.stamps import stamp_to_ns
from edge_inference.sim.dynamics import CarState
from edge_inference.sim.expert import ExpertConfig, PurePursuitExpert
from edge_inference.sim.track import SHAPES, Track, TrackConfig


@dataclass
class ExpertNodeConfig:
    control_rate: float = param(30.0, "vehicle/command rate, Hz", range=(1.0, 200.0), read_only=True)
    cruise_mps: float = param(1.5, "speed on straights, m/s", range=(0.1, 5.0), read_only=True)
    track_shape: str = param("oval", "lane shape (must match sim_node)", choices=SHAPES, read_only=True)
    track_straight_m: float = param(6.0, "oval straight length, m", range=(0.0, 100.0), read_only=True)
    track_radius_m: float = param(2.5, "bend radius, m", range=(0.5, 50.0), read_only=True)
    track_width_m: float = param(0.9, "lane width, m", range=(0.2, 5.0), read_only=True)
    pose_timeout: float = param(0.3, "neutral when the newest pose is older than this, s", range=(0.01, 10.0))


class SpeedEstimator:
    """Forward speed from successive poses (m/s), low-pass filtered."""

    def __init__(self, tau_s: float = 0.1):
        self.tau_s, self.v = tau_s, 0.0
        self._last: tuple[int, float, float] | None = None

    def update(self, t_ns: int, x: float, y: float, yaw: float) -> float:
        if self._last is not None:
            dt = (t_ns - self._last[0]) * 1e-9
            if dt > 0:
                dx, dy = x - self._last[1], y - self._last[2]
                v = (dx * math.cos(yaw) + dy * math.sin(yaw)) / dt
                a = 1 - math.exp(-dt / self.tau_s)
                self.v += a * (v - self.v)
        self._last = (t_ns, x, y)
        return self.v


class ExpertNode(Node):
    @destroy_on_failure
    def __init__(self, **kwargs):
        super().__init__("expert_node", **kwargs)
        from edge_inference_msgs.msg import VehicleCommand
        self._VehicleCommand = VehicleCommand
        self.live_params = LiveParams(self)  # pose_timeout is read per tick; the rest are read-only
        c = self.live_params.declare(ExpertNodeConfig, "cfg", live=("pose_timeout",))
        track = Track(TrackConfig(shape=c.track_shape, straight_m=c.track_straight_m,
                                  radius_m=c.track_radius_m, width_m=c.track_width_m))
        self.expert = PurePursuitExpert(track, cfg=ExpertConfig(cruise_mps=c.cruise_mps))
        self.speed = SpeedEstimator()
        self._pose = None          # (stamp, CarState)
        self.commands = 0
        self.pub = self.create_publisher(VehicleCommand, "vehicle/command", reliable_qos())
        self.create_subscription(PoseStamped, "sim/pose", self._on_pose, sensor_qos())
        self.timer = self.create_timer(1.0 / c.control_rate, self._on_timer)

    def _on_pose(self, msg) -> None:
        q = msg.pose.orientation
        yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
        x, y = msg.pose.position.x, msg.pose.position.y
        v = self.speed.update(stamp_to_ns(msg.header.stamp), x, y, yaw)
        self._pose = (msg.header.stamp, CarState(x=x, y=y, yaw=yaw, v=v))

    def _on_timer(self) -> None:
        msg = self._VehicleCommand()
        if self._pose is None:
            return
        stamp, state = self._pose
        age = (self.get_clock().now().nanoseconds - stamp_to_ns(stamp)) * 1e-9
        msg.header.stamp = stamp
        if age > self.cfg.pose_timeout:
            msg.source = self._VehicleCommand.SOURCE_NEUTRAL
            self.get_logger().warn(f"sim/pose is {age:.2f} s old: commanding neutral", throttle_duration_sec=2.0)
        else:
            msg.steering, msg.throttle = self.expert.act(state)
            msg.source = self._VehicleCommand.SOURCE_POLICY
        self.pub.publish(msg)
        self.commands += 1


def main(args=None):
    spin_node(ExpertNode, args)


if __name__ == "__main__":
    main()
