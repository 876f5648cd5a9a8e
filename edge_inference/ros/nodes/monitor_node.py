"""monitor_node: debug views of the running car (rviz markers, annotated image, static TF).

A separate node (yolo_ros style) so the driving nodes never draw anything: it
subscribes to the camera, the action chunks, the commands and the behavior
state, and publishes ``monitor/markers`` (MarkerArray in base_link) and
``monitor/overlay`` (Image for rqt_image_view) only while someone subscribes
to them: with nobody watching it decodes no image and builds no message.
The path drawn is the chunk integrated from the car's pose at the chunk's image
stamp (``markers.integrate_chunk``); the arrow is the latest command.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, fields

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from edge_inference.core.config_fields import param
from edge_inference.core.overlay import (
    CameraMountConfig,
    OverlayContent,
    draw_overlay,
    intrinsics_from_fov,
    quaternion_rpy,
)
from edge_inference.core.path_prediction import PathModelConfig, action_indices, chunk_actions, integrate_chunk
from edge_inference.ros.diagnostics import ERROR, OK, WARN, FrequencyTask, LatencyTask, Updater
from edge_inference.ros.image_conversion import image_msg_to_rgb, rgb_to_image_msg
from edge_inference.ros.markers import build_marker_array
from edge_inference.ros.params import LiveParams
from edge_inference.ros.qos import qos_from_name, reliable_qos
from edge_inference.ros.spin import destroy_on_failure, spin_node
from edge_inference_msgs.msg import ActionChunk, BehaviorState, VehicleCommand

NS_PER_S = 1_000_000_000
LATENCY_WINDOW = 30  # chunks in the latency p50/p95 (a few seconds of chunks: a slowdown shows quickly)


@dataclass
class MonitorConfig:
    marker_rate_hz: float = param(10.0, "MarkerArray publish rate while subscribed, Hz", range=(0.5, 100.0),
                                  read_only=True)
    overlay_max_hz: float = param(15.0, "most annotated frames per second while subscribed, Hz",
                                  range=(0.5, 120.0), read_only=True)
    image_qos: str = param("sensor", "camera subscription QoS: sensor or reliable", choices=("sensor", "reliable"),
                           read_only=True)
    fallback_hfov_deg: float = param(90.0, "horizontal FOV used until camera/camera_info arrives, deg",
                                     range=(1.0, 179.0))
    command_timeout_s: float = param(0.5, "a command older than this is drawn as missing, s", range=(0.01, 60.0))
    expected_command_hz: float = param(30.0, "expected vehicle/command rate for the diagnostic, Hz",
                                       range=(0.1, 1000.0))
    rate_tolerance: float = param(0.3, "relative rate deviation before WARN", range=(0.0, 1.0))
    rate_window_s: float = param(2.0, "rates are counted over this window, s", range=(0.1, 60.0), read_only=True)
    diagnostic_period_s: float = param(1.0, "diagnostics publish period, s", range=(0.05, 60.0), read_only=True)
    latency_warn_ms: float = param(100.0, "chunk latency p95 above this is WARN, ms", range=(0.0, 10000.0))
    latency_error_ms: float = param(250.0, "chunk latency p95 above this is ERROR, ms", range=(0.0, 10000.0))
    publish_static_tf: bool = param(True, "publish base_link -> camera_link on /tf_static (needs tf2_msgs)",
                                    read_only=True)


CONFIG_CLASSES = (MonitorConfig, PathModelConfig, CameraMountConfig)


def static_camera_transform(mount: CameraMountConfig, stamp):
    """geometry_msgs/TransformStamped base_frame -> camera_frame from the mount parameters."""
    from geometry_msgs.msg import TransformStamped
    tf = TransformStamped()
    tf.header.stamp = stamp
    tf.header.frame_id, tf.child_frame_id = mount.base_frame, mount.camera_frame
    tf.transform.translation.x = float(mount.camera_x_m)
    tf.transform.translation.y = float(mount.camera_y_m)
    tf.transform.translation.z = float(mount.camera_z_m)
    q = quaternion_rpy(mount.camera_roll_rad, mount.camera_pitch_rad, mount.camera_yaw_rad)
    tf.transform.rotation.x, tf.transform.rotation.y, tf.transform.rotation.z, tf.transform.rotation.w = q
    return tf


def camera_matrix_for(info: CameraInfo | None, width: int, height: int, fallback_hfov_deg: float) -> np.ndarray:
    """3x3 K for a (width x height) image: CameraInfo's, rescaled if the image size differs."""
    if info is None or info.width == 0 or info.height == 0 or info.k[0] <= 0:
        return intrinsics_from_fov(width, height, fallback_hfov_deg)
    K = np.array(info.k, dtype=np.float64).reshape(3, 3)
    sx, sy = width / info.width, height / info.height
    return np.diag([sx, sy, 1.0]) @ K


class MonitorNode(Node):
    """ROS shell around ``markers`` and ``overlay``; every output is gated on its subscriber count."""

    @destroy_on_failure
    def __init__(self, **kwargs):
        super().__init__("monitor_node", **kwargs)
        # read per message, so they apply at run time; the rest (timers, QoS, the static TF) are read-only
        self.live_params = LiveParams(self)
        self.live_params.declare(MonitorConfig, "cfg", live=("command_timeout_s", "fallback_hfov_deg"))
        self.live_params.declare(PathModelConfig, "path_cfg", live=tuple(f.name for f in fields(PathModelConfig)))
        self.live_params.declare(CameraMountConfig, "mount")
        if self.cfg.latency_error_ms < self.cfg.latency_warn_ms:
            raise ValueError(f"latency_error_ms ({self.cfg.latency_error_ms}) must be >= latency_warn_ms "
                             f"({self.cfg.latency_warn_ms})")

        self._lock = threading.Lock()  # guards the latest inputs below
        self._poses: np.ndarray | None = None      # (H+1, 3) predicted path of the latest chunk
        self._chunk: ActionChunk | None = None
        self._command: VehicleCommand | None = None
        self._command_rx_ns = 0
        self._behavior: BehaviorState | None = None
        self._camera_info: CameraInfo | None = None
        self._last_overlay_t = 0.0
        self.bad_chunks = 0
        self.last_bad_chunk = ""
        self.overlay_frames = 0        # annotated frames published
        self.overlay_skipped = 0       # camera frames ignored because nobody watches the overlay
        self.overlay_errors = 0
        self.last_overlay_error = ""
        self.marker_arrays = 0

        self.pub_markers = self.create_publisher(MarkerArray, "monitor/markers", reliable_qos(1))
        self.pub_overlay = self.create_publisher(Image, "monitor/overlay", qos_from_name(self.cfg.image_qos))
        # raw: an unwatched frame is never deserialized (a 640x360 frame is ~700 kB of Python work)
        self.create_subscription(Image, "camera/image_raw", self._on_image_raw, qos_from_name(self.cfg.image_qos),
                                 raw=True)
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_camera_info,
                                 qos_from_name(self.cfg.image_qos))
        self.create_subscription(ActionChunk, "policy/action_chunk", self._on_chunk, reliable_qos(10))
        self.create_subscription(VehicleCommand, "vehicle/command", self._on_command, reliable_qos(10))
        self.create_subscription(BehaviorState, "behavior/state", self._on_behavior, reliable_qos(10))
        self.create_timer(1.0 / self.cfg.marker_rate_hz, self._publish_markers)
        self.static_tf_published = self._publish_static_tf() if self.cfg.publish_static_tf else False

        self.command_rate = FrequencyTask(self.cfg.expected_command_hz, tolerance=self.cfg.rate_tolerance,
                                          window_s=self.cfg.rate_window_s)
        self.chunk_latency = LatencyTask(self.cfg.latency_warn_ms, self.cfg.latency_error_ms,
                                         window=LATENCY_WINDOW)
        self.diag = Updater(self, hardware_id="monitor", period_s=self.cfg.diagnostic_period_s)
        self.diag.add("vehicle command rate", self.command_rate)
        self.diag.add("chunk latency", self.chunk_latency)
        self.diag.add("views", self._views_status)

    # -- static TF ---------------------------------------------------------------------------
    def _publish_static_tf(self) -> bool:
        try:
            from tf2_msgs.msg import TFMessage  # noqa: PLC0415 - dev venv: built from third_party/tf2_msgs
        except ImportError:
            self.get_logger().warning(
                "tf2_msgs is not importable: no base_link -> camera_link static TF (dev venv: `make msgs` builds "
                "third_party/tf2_msgs; a ROS install: apt install ros-$ROS_DISTRO-tf2-msgs)")
            return False
        qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)  # late rviz still gets it (tf2 convention)
        self._pub_tf_static = self.create_publisher(TFMessage, "/tf_static", qos)
        self._pub_tf_static.publish(TFMessage(transforms=[
            static_camera_transform(self.mount, self.get_clock().now().to_msg())]))
        return True

    # -- inputs ------------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._camera_info = msg

    def _on_chunk(self, msg: ActionChunk) -> None:
        self.chunk_latency.record(msg.latency_ms)
        try:
            actions = chunk_actions(msg)
            steer_i, throttle_i = action_indices(msg.action_names)
            poses = integrate_chunk(actions, float(msg.dt), self.path_cfg, steer_i, throttle_i)
        except ValueError as exc:
            with self._lock:
                self.bad_chunks += 1
                self.last_bad_chunk = str(exc)
                self._poses = None  # do not keep drawing a path the newest chunk contradicts
            self.get_logger().warning(f"cannot draw action chunk: {exc}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._chunk, self._poses = msg, poses

    def _on_command(self, msg: VehicleCommand) -> None:
        self.command_rate.tick()
        with self._lock:
            self._command, self._command_rx_ns = msg, self.get_clock().now().nanoseconds

    def _on_behavior(self, msg: BehaviorState) -> None:
        with self._lock:
            self._behavior = msg

    def _fresh_command(self) -> VehicleCommand | None:
        """The latest command unless it is older than command_timeout_s (caller holds the lock)."""
        if self._command is None:
            return None
        age_s = (self.get_clock().now().nanoseconds - self._command_rx_ns) / NS_PER_S
        return self._command if age_s <= self.cfg.command_timeout_s else None

    # -- outputs (only with subscribers) -----------------------------------------------------
    def _publish_markers(self) -> None:
        if self.pub_markers.get_subscription_count() == 0:
            return
        with self._lock:
            poses, chunk, cmd = self._poses, self._chunk, self._fresh_command()
        from std_msgs.msg import Header
        header = Header(frame_id=self.mount.base_frame)
        header.stamp = chunk.header.stamp if chunk is not None and poses is not None else \
            self.get_clock().now().to_msg()
        command = (float(cmd.steering), float(cmd.throttle)) if cmd is not None else None
        self.pub_markers.publish(build_marker_array(header, self.path_cfg, poses=poses, command=command))
        self.marker_arrays += 1

    def _on_image_raw(self, data: bytes) -> None:
        if self.pub_overlay.get_subscription_count() == 0:
            self.overlay_skipped += 1
            return
        now = time.monotonic()
        if now - self._last_overlay_t < 1.0 / self.cfg.overlay_max_hz:
            return
        self._last_overlay_t = now
        self._draw(deserialize_message(data, Image))

    def _draw(self, msg: Image) -> None:
        try:
            rgb = image_msg_to_rgb(msg)
        except ValueError as exc:  # unsupported encoding / wrong size: say so, keep running
            self.overlay_errors += 1
            self.last_overlay_error = str(exc)
            self.get_logger().error(f"overlay: {exc}", throttle_duration_sec=5.0)
            return
        with self._lock:
            cmd, beh, poses, chunk, info = (self._fresh_command(), self._behavior, self._poses, self._chunk,
                                            self._camera_info)
        content = OverlayContent(
            steering=float(cmd.steering) if cmd else None, throttle=float(cmd.throttle) if cmd else None,
            path_base=poses, behavior_label=beh.label if beh else None,
            behavior_confidence=float(beh.confidence) if beh else None,
            latency_ms=float(chunk.latency_ms) if chunk else None,
            source={VehicleCommand.SOURCE_POLICY: "policy", VehicleCommand.SOURCE_MANUAL: "manual",
                    VehicleCommand.SOURCE_NEUTRAL: "neutral"}.get(cmd.source, "") if cmd else "no command")
        K = camera_matrix_for(info, rgb.shape[1], rgb.shape[0], self.cfg.fallback_hfov_deg)
        out = rgb_to_image_msg(draw_overlay(rgb, content, K, self.mount), msg.header, "rgb8")
        self.pub_overlay.publish(out)
        self.overlay_frames += 1

    # -- diagnostics -------------------------------------------------------------------------
    def _views_status(self, stat) -> None:
        with self._lock:
            have_chunk, have_behavior, have_info = (self._chunk is not None, self._behavior is not None,
                                                    self._camera_info is not None)
            bad, last_bad = self.bad_chunks, self.last_bad_chunk
        stat.add("overlay_subscribers", self.pub_overlay.get_subscription_count())
        stat.add("marker_subscribers", self.pub_markers.get_subscription_count())
        stat.add("overlay_frames", self.overlay_frames)
        stat.add("overlay_skipped_unwatched", self.overlay_skipped)
        stat.add("marker_arrays", self.marker_arrays)
        stat.add("bad_chunks", bad)
        stat.add("camera_info", "received" if have_info else f"none (using {self.cfg.fallback_hfov_deg} deg FOV)")
        stat.add("static_tf", "published" if self.static_tf_published else "not published")
        stat.add("behavior_state", "received" if have_behavior else "none yet")
        stat.summary(OK, "watching" if have_chunk else "no action chunk yet")
        if bad:
            stat.merge_summary(WARN, f"undrawable chunks: {last_bad}")
        if self.overlay_errors:
            stat.merge_summary(ERROR, f"overlay failed: {self.last_overlay_error}")


def main(args=None):
    spin_node(MonitorNode, args)


if __name__ == "__main__":
    main()
