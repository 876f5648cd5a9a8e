"""camera_node: OpenCV capture -> sensor_msgs/Image + CameraInfo (sensor QoS).

Sources: V4L2 device, GStreamer pipeline, video file, synthetic scene, or the
simulator. A lost device is reopened with exponential backoff and reported in
diagnostics; the node never exits because a camera was unplugged.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from edge_inference.core.config_fields import param
from edge_inference.devices import camera_sources
from edge_inference.ros.diagnostics import ERROR, OK, WARN, FrequencyTask, Updater
from edge_inference.ros.image_conversion import rgb_to_image_msg
from edge_inference.ros.params import LiveParams
from edge_inference.ros.qos import qos_from_name
from edge_inference.ros.spin import destroy_on_failure, spin_node
from edge_inference.ros.stamps import ns_to_stamp


@dataclass
class CameraConfig:
    camera_source: str = param("synthetic", "v4l2:/dev/video0 | v4l2:0 | picamera2:0 (Pi CSI camera) | "
                               "gstreamer:<pipeline> | file:<path> | synthetic | sim", read_only=True)
    width: int = param(320, "published image width, px", range=(16, 4096))
    height: int = param(180, "published image height, px", range=(16, 4096))
    fps: float = param(30.0, "capture/publish rate, Hz", range=(0.1, 240.0))
    encoding: str = param("rgb8", "published encoding", choices=("rgb8", "bgr8"))
    frame_id: str = param("camera_link", "header.frame_id of images")
    horizontal_fov_deg: float = param(90.0, "horizontal field of view for CameraInfo, deg", range=(1.0, 179.0))
    qos: str = param("sensor", "QoS profile: sensor (best effort, depth 1) or reliable", choices=("sensor", "reliable"))
    reopen_initial_s: float = param(0.5, "first reopen delay after a lost device, s", range=(0.01, 60.0))
    reopen_max_s: float = param(8.0, "longest reopen delay, s", range=(0.01, 600.0))
    rate_tolerance: float = param(0.2, "frame rate deviation from fps before diagnostics WARN (fraction)",
                                  range=(0.0, 1.0), read_only=True)


def camera_info_for(cfg: CameraConfig, header) -> CameraInfo:
    """Pinhole intrinsics from the horizontal field of view (no distortion)."""
    fx = (cfg.width / 2.0) / math.tan(math.radians(cfg.horizontal_fov_deg) / 2.0)
    cx, cy = cfg.width / 2.0, cfg.height / 2.0
    info = CameraInfo()
    info.header = header
    info.width, info.height = cfg.width, cfg.height
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [fx, 0.0, cx, 0.0, fx, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fx, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


CONFIG_CLASS = CameraConfig


class CameraNode(Node):
    @destroy_on_failure
    def __init__(self, **kwargs):
        super().__init__("camera_node", **kwargs)
        # read per frame, so a `ros2 param set` takes effect on the next one; the rest are read-only
        self.live_params = LiveParams(self)
        self.live_params.declare(CameraConfig, "cfg", live=("frame_id", "encoding", "horizontal_fov_deg"))
        qos = qos_from_name(self.cfg.qos)
        self.pub_image = self.create_publisher(Image, "camera/image_raw", qos)
        self.pub_info = self.create_publisher(CameraInfo, "camera/camera_info", qos)
        self.backoff = camera_sources.Backoff(self.cfg.reopen_initial_s, self.cfg.reopen_max_s)
        self.source = camera_sources.make_source(self.cfg.camera_source, self.cfg.width, self.cfg.height,
                                                 self.cfg.fps, **self._source_kwargs())
        self.is_open, self.reopen_at, self.reopens, self.read_failures = False, 0.0, 0, 0
        self.last_error = ""
        self.frames = FrequencyTask(self.cfg.fps, tolerance=self.cfg.rate_tolerance)
        self.diag = Updater(self, hardware_id=f"camera:{self.cfg.camera_source}")
        self.diag.add("frame rate", self.frames)
        self.diag.add("device", self._device_status)
        self._try_open()
        self.timer = self.create_timer(1.0 / self.cfg.fps, self._on_timer)

    def _source_kwargs(self) -> dict:
        kind, _ = camera_sources.parse_source(self.cfg.camera_source)
        return {"node": self} if kind == "sim" else {}

    def _try_open(self) -> None:
        try:
            self.source.open()
        except camera_sources.SourceError as exc:
            self.last_error = str(exc)
            delay = self.backoff.next_delay()
            self.reopen_at = time.monotonic() + delay
            self.get_logger().warning(f"{exc}; retrying in {delay:.1f} s", throttle_duration_sec=5.0)
            return
        if self.reopens:
            self.get_logger().info(f"camera source {self.cfg.camera_source!r} reopened")
        self.is_open = True

    def _on_timer(self) -> None:
        if not self.is_open:
            if time.monotonic() >= self.reopen_at:
                self.reopens += 1
                self._try_open()
            return
        frame = self.source.read()
        if frame is None:
            self.read_failures += 1
            self.last_error = "frame read failed (device lost?)"
            self.get_logger().warning("camera read failed; closing and reopening with backoff")
            self.source.close()
            self.is_open = False
            self.reopen_at = time.monotonic() + self.backoff.next_delay()
            return
        self.backoff.reset()
        msg = rgb_to_image_msg(frame, encoding=self.cfg.encoding)
        msg.header.stamp = ns_to_stamp(self._frame_stamp_ns())
        msg.header.frame_id = self.cfg.frame_id
        self.pub_image.publish(msg)
        self.pub_info.publish(camera_info_for(self.cfg, msg.header))
        self.frames.tick()

    def _frame_stamp_ns(self) -> int:
        """The exposure time when the source reports it (Picamera2), else the time the frame was read."""
        now = self.get_clock().now().nanoseconds
        capture_ns = getattr(self.source, "last_capture_ns", None)
        if capture_ns is None:
            return now
        clock_now = time.clock_gettime_ns(self.source.capture_clock)
        return camera_sources.capture_time_on_ros_clock(capture_ns, clock_now, now)

    def _device_status(self, stat) -> None:
        stat.add("source", self.cfg.camera_source)
        stat.add("open", self.is_open)
        stat.add("reopen_attempts", self.reopens)
        stat.add("read_failures", self.read_failures)
        if self.is_open:
            stat.summary(OK if not self.read_failures else WARN,
                         "streaming" if not self.read_failures else "streaming (recovered from failures)")
        else:
            stat.summary(ERROR, f"device not open: {self.last_error}")

    def destroy_node(self):
        # Also runs on a node whose __init__ raised (bad parameter): rclpy's context destroys every node it tracks.
        source = getattr(self, "source", None)
        if source is not None:
            source.close()
        return super().destroy_node()


def main(args=None):
    spin_node(CameraNode, args)


if __name__ == "__main__":
    main()
