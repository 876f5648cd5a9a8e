"""BehaviorNode over real DDS: IMU in -> smoothed BehaviorState out, magnetometer diagnostics, enable."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from dds_harness import NodeHarness

from edge_inference.sim.behaviors import BEHAVIOR_CLASSES

NS = 1_000_000_000
REPO = Path(__file__).resolve().parents[1]
HAPT_RAW = REPO.parent / "shared" / "data" / "hapt" / "RawData"
FSQ_MODEL = REPO / "models" / "fsq_hapt"
G = 9.80665  # m/s² per g (HAPT accelerometer unit)


class Harness(NodeHarness):
    """BehaviorNode; the probe publishes IMU/mag with chosen stamps and records every output."""

    def __init__(self, ctx, **params):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Imu, MagneticField

        from edge_inference.ros.nodes.behavior_node import BehaviorNode
        from edge_inference.ros.qos import reliable_qos, sensor_qos
        from edge_inference_msgs.msg import BehaviorState, InferenceStats

        overrides = [Parameter(k, value=v) for k, v in params.items()]
        super().__init__(ctx, BehaviorNode(context=ctx, parameter_overrides=overrides), "behavior_probe")
        self.states, self.stats, self.diags = [], [], []
        self.probe.create_subscription(BehaviorState, "behavior/state", self.states.append, reliable_qos())
        self.probe.create_subscription(InferenceStats, "behavior/stats", self.stats.append, reliable_qos())
        self.probe.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, reliable_qos())
        self.pub_imu = self.probe.create_publisher(Imu, "imu/data_raw", sensor_qos(10))
        self.pub_mag = self.probe.create_publisher(MagneticField, "imu/mag", sensor_qos(10))
        self.Imu, self.MagneticField = Imu, MagneticField
        self.t_ns = self.probe.get_clock().now().nanoseconds
        self.start()

    def stream_recorded(self, accel_g: np.ndarray, gyro: np.ndarray, rate_hz: float = 50.0):
        """Publish recorded samples (accel in g, gyro rad/s) with stamps 1/rate apart, ~3x real time."""
        from edge_inference.ros.stamps import ns_to_stamp
        period = int(NS / rate_hz)
        for a, g in zip(accel_g * G, gyro):
            msg = self.Imu()
            msg.header.stamp = ns_to_stamp(self.t_ns)
            msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = (float(v) for v in a)
            msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (float(v) for v in g)
            self.pub_imu.publish(msg)
            self.t_ns += period
            time.sleep(period / NS / 3)

    def stream(self, seconds: float, rate_hz: float = 100.0, yaw_rate: float = 0.0, mag: bool = False):
        """Publish IMU (and 50 Hz mag) with stamps spaced 1/rate, about 3x faster than real time."""
        from edge_inference.ros.stamps import ns_to_stamp
        period = int(NS / rate_hz)
        for i in range(int(seconds * rate_hz)):
            msg = self.Imu()
            msg.header.stamp = ns_to_stamp(self.t_ns)
            msg.header.frame_id = "imu_link"
            msg.linear_acceleration.z = 9.81
            msg.angular_velocity.z = yaw_rate
            msg.linear_acceleration.y = 1.0 * yaw_rate  # centripetal at 1 m/s
            self.pub_imu.publish(msg)
            if mag and i % max(1, int(rate_hz // 50)) == 0:
                m = self.MagneticField()
                m.header.stamp = ns_to_stamp(self.t_ns)
                m.magnetic_field.x, m.magnetic_field.z = 2e-5, 4e-5
                self.pub_mag.publish(m)
            self.t_ns += period
            time.sleep(period / NS / 3)

    def diag_level(self, task: str):
        for arr in reversed(self.diags):
            for status in arr.status:
                if status.name == f"behavior_node: {task}":
                    return status.level, status.message
        return None


@pytest.mark.timeout(60)
def test_imu_stream_gives_smoothed_behavior_states_and_mag_warning(ros_context):
    from diagnostic_msgs.msg import DiagnosticStatus
    h = Harness(ros_context, stride=10, method="ema", ema_alpha=0.5)
    try:
        h.stream(2.6, yaw_rate=1.2)  # 100 Hz IMU, model at 50 Hz: first window after 2 s
        assert h.wait_for(lambda: len(h.states) >= 2, 5.0), f"no BehaviorState: {h.node.windower.stats}"
        s = h.states[-1]
        assert s.label == "turn_left" and s.class_names[s.class_id] == "turn_left"
        assert list(s.class_names) == list(BEHAVIOR_CLASSES)
        assert len(s.probabilities) == len(BEHAVIOR_CLASSES) and abs(sum(s.probabilities) - 1.0) < 1e-4
        assert s.confidence == pytest.approx(s.probabilities[s.class_id])
        assert s.fsq_code == -1 and s.header.frame_id == "imu_link"
        stamp_ns = s.header.stamp.sec * NS + s.header.stamp.nanosec
        assert stamp_ns < h.t_ns  # newest window row, never in the future of the data
        assert h.stats and h.stats[-1].inference_ms > 0
        # stationary data: once the window holds only it, the smoothed label follows
        n = len(h.states)
        h.stream(2.4, yaw_rate=0.0)
        assert h.wait_for(lambda: len(h.states) >= n + 10, 5.0)
        labels = [x.label for x in h.states[n:]]
        assert labels[0] == "turn_left" and labels[-1] == "stationary"
        assert h.wait_for(lambda: h.diag_level("magnetometer") is not None, 3.0)
        level, message = h.diag_level("magnetometer")
        assert level == DiagnosticStatus.WARN and "magnetometer" in message
        # with a magnetometer the warning clears and the window holds the field
        h.stream(2.2, mag=True)
        assert not h.node.windower.mag_missing
        before = len(h.diags)
        assert h.wait_for(lambda: len(h.diags) > before + 1, 3.0)
        assert h.diag_level("magnetometer")[0] == DiagnosticStatus.OK
    finally:
        h.close()


@pytest.mark.timeout(60)
def test_disabled_node_classifies_nothing_and_50hz_imu_works(ros_context):
    h = Harness(ros_context, enabled=False, stride=25)
    try:
        h.stream(2.2, rate_hz=50.0)
        time.sleep(0.3)
        assert h.node.windower.stats.windows >= 1 and not h.states
        h.call_set_bool("behavior/enable", True)
        h.stream(0.6, rate_hz=50.0)
        assert h.wait_for(lambda: len(h.states) >= 1, 5.0)
        assert h.states[-1].label == "stationary"
    finally:
        h.close()


@pytest.mark.timeout(60)
@pytest.mark.skipif(not (HAPT_RAW.is_dir() and (FSQ_MODEL / "model.onnx").is_file()),
                    reason="needs ../shared/data/hapt (real recordings) and models/fsq_hapt/model.onnx")
def test_real_fsq_model_on_recorded_hapt_imu(ros_context):
    """The trained FSQ classifier through ONNX Runtime, fed real recorded IMU data over DDS."""
    acc = np.loadtxt(HAPT_RAW / "acc_exp01_user01.txt")
    gyro = np.loadtxt(HAPT_RAW / "gyro_exp01_user01.txt")
    segments = {6: (3663, 4538), 1: (7496, 8078)}  # labels.txt, exp 1 user 1: LAYING, WALKING (1-based)
    h = Harness(ros_context, model_path=str(FSQ_MODEL), backend="onnxruntime", stride=25,
                method="majority", vote_window=3)
    try:
        assert h.node.runner.backend_name == "onnxruntime"
        labels = {}
        for activity, (start, _) in segments.items():
            n = len(h.states)
            h.stream_recorded(acc[start - 1: start + 299], gyro[start - 1: start + 299])  # 6 s at 50 Hz
            assert h.wait_for(lambda: len(h.states) >= n + 5, 5.0), f"no states: {h.node.windower.stats}"
            labels[activity] = h.states[-1].label
            # a gap of more than max_gap between the two recordings resets the window
            h.t_ns += NS
        s = h.states[-1]
        assert list(s.class_names)[:6] == ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING",
                                           "STANDING", "LAYING"]
        assert s.fsq_code >= 0
        assert labels == {6: "LAYING", 1: "WALKING"}
        assert h.node.windower.stats.resets >= 1
    finally:
        h.close()
