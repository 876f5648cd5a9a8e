"""One simulated world: track + car + IMU + ground-truth behavior, stepped by normalized commands.

Shared by the ROS sim node, the demonstration generator and the direct
(ROS-free) drive loop so they all simulate exactly the same thing.
"""
from __future__ import annotations

from collections import deque

from edge_inference.sim.behaviors import BehaviorRules, instant_label, window_label
from edge_inference.sim.dynamics import CarState, VehicleConfig, command_to_targets, step
from edge_inference.sim.imu_model import ImuConfig, ImuModel, ImuSample
from edge_inference.sim.track import Track, TrackConfig


class World:
    def __init__(self, track: TrackConfig | Track | None = None, vehicle: VehicleConfig | None = None,
                 imu: ImuConfig | None = None, rules: BehaviorRules | None = None, seed: int = 0,
                 label_window_s: float = 2.0):
        self.track = track if isinstance(track, Track) else Track(track)
        self.vehicle = vehicle or VehicleConfig()
        self.imu = ImuModel(imu, seed=seed)
        self.rules = rules or BehaviorRules()
        self.label_window_s = label_window_s
        self.state = CarState()
        self.t = 0.0
        self._labels: deque[tuple[float, str]] = deque()
        self.reset()

    def reset(self, x: float | None = None, y: float | None = None, yaw: float | None = None) -> CarState:
        sx, sy, syaw = self.track.start_pose()
        self.state = CarState(x=sx if x is None else x, y=sy if y is None else y, yaw=syaw if yaw is None else yaw)
        self.t = 0.0
        self._labels.clear()
        return self.state

    def step(self, steering: float, throttle: float, dt: float) -> CarState:
        """Advance by dt s under a normalized command (+steering = left)."""
        self.state = step(self.vehicle, self.state, *command_to_targets(self.vehicle, steering, throttle), dt)
        self.t += dt
        s = self.state
        self._labels.append((self.t, instant_label(self.rules, s.v, s.yaw_rate, s.accel)))
        while self._labels and self._labels[0][0] < self.t - self.label_window_s:
            self._labels.popleft()
        return self.state

    def read_imu(self) -> ImuSample:
        return self.imu.read(self.state)

    def behavior(self) -> str:
        """Ground-truth label of the last ``label_window_s`` of motion."""
        if not self._labels:
            return "stationary"
        return window_label([name for _, name in self._labels])
