"""`edge-inference gen-demos`: expert demonstrations and IMU behavior windows from the simulator.

Writes into --out:
  demos.npz         images (N,H,W,3) uint8 RGB, states (N,2) applied [steering, throttle],
                    actions (N,2) expert [steering, throttle], episode_index, frame_index (N,),
                    fps, action_names, state_names   -> `edge-inference train-act --data`
  imu_windows.npz   windows (N,T,9) [accel m/s², gyro rad/s, mag T], labels (N,) str, users (N,)
                    drive index, class_names, sample_rate_hz   -> `edge-inference train-fsq --data`
  bag/              rosbag2 (MCAP) of the first --bag-episodes episodes: camera/image_raw,
                    vehicle/command (expert), vehicle/state (applied), imu/data_raw, imu/mag,
                    behavior/label, sim/pose (the eval issue's format, via bag_io)
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edge_inference.commands.arg_types import non_negative_float, non_negative_int, positive_float, positive_int
from edge_inference.core.files import Staging


def register(sub) -> None:
    p = sub.add_parser("gen-demos", help="generate expert demonstrations (npz + rosbag2) and IMU windows in the sim",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="artifacts/sim_demos", help="output directory")
    p.add_argument("--episodes", type=positive_int, default=12)
    p.add_argument("--seconds", type=positive_float, default=40.0, help="per episode")
    p.add_argument("--image-size", type=positive_int, nargs=2, default=(72, 128), metavar=("H", "W"),
                   help="stored image size (the camera renders 320x180, resized with INTER_AREA)")
    p.add_argument("--steer-noise", type=non_negative_float, default=0.25, help="injected steering disturbance std")
    p.add_argument("--bag-episodes", type=non_negative_int, default=1, help="episodes also written as rosbag2 (0: none)")
    p.add_argument("--imu-drives", type=non_negative_int, default=12, help="scripted drives for the IMU dataset (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


class _BagRecorder:
    """Writes one episode's frames as ROS messages (rosbags types, custom ones from our .msg files)."""

    def __init__(self, writer, t0_ns: int, class_names):
        from edge_inference.core.bag_io import make_header, msg_class, rgb_to_image
        self.w, self.t0, self.names = writer, t0_ns, list(class_names)
        self._hdr, self._cls, self._img = make_header, msg_class, rgb_to_image

    def __call__(self, frame) -> None:
        import math

        import numpy as np
        ns = self.t0 + int(frame.t_s * 1e9)
        C = self._cls
        self.w.write("/camera/image_raw", self._img(frame.camera_rgb, ns, "camera_link"), ns)
        Cmd = C("edge_inference_msgs/msg/VehicleCommand")
        self.w.write("/vehicle/command", Cmd(header=self._hdr(ns), steering=float(frame.action[0]),
                                             throttle=float(frame.action[1]), source=2), ns)
        St = C("edge_inference_msgs/msg/VehicleState")
        self.w.write("/vehicle/state", St(header=self._hdr(ns), steering_us=0, throttle_us=0,
                                          steering=float(frame.state[0]), throttle=float(frame.state[1]),
                                          mode=1, link=2, armed=True, failsafe_flags=0, rc_steering_us=0,
                                          rc_throttle_us=0, rc_mode_us=0, loop_time_us=0.0, rtt_ms=0.0), ns)
        x, y, yaw = frame.pose
        P, Pose, Pt, Q = (C("geometry_msgs/msg/PoseStamped"), C("geometry_msgs/msg/Pose"),
                          C("geometry_msgs/msg/Point"), C("geometry_msgs/msg/Quaternion"))
        self.w.write("/sim/pose", P(header=self._hdr(ns, "map"), pose=Pose(
            position=Pt(x=x, y=y, z=0.0), orientation=Q(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)))), ns)
        Imu, Mag, V3, Q = (C("sensor_msgs/msg/Imu"), C("sensor_msgs/msg/MagneticField"),
                           C("geometry_msgs/msg/Vector3"), C("geometry_msgs/msg/Quaternion"))
        zeros9 = np.zeros(9)
        for t_s, row in frame.imu_rows:
            ins = self.t0 + int(t_s * 1e9)
            h = self._hdr(ins, "imu_link")
            cov = zeros9.copy()
            cov[0] = -1.0
            self.w.write("/imu/data_raw", Imu(header=h, orientation=Q(x=0.0, y=0.0, z=0.0, w=1.0),
                                              orientation_covariance=cov,
                                              angular_velocity=V3(x=float(row[3]), y=float(row[4]), z=float(row[5])),
                                              angular_velocity_covariance=zeros9.copy(),
                                              linear_acceleration=V3(x=float(row[0]), y=float(row[1]), z=float(row[2])),
                                              linear_acceleration_covariance=zeros9.copy()), ins)
            self.w.write("/imu/mag", Mag(header=h, magnetic_field=V3(x=float(row[6]), y=float(row[7]),
                                                                     z=float(row[8])),
                                         magnetic_field_covariance=zeros9.copy()), ins)
        B = C("edge_inference_msgs/msg/BehaviorState")
        probs = np.array([1.0 if n == frame.behavior else 0.0 for n in self.names], np.float32)
        self.w.write("/behavior/label", B(header=self._hdr(ns), class_id=self.names.index(frame.behavior),
                                          label=frame.behavior, confidence=1.0, probabilities=probs,
                                          class_names=self.names, fsq_code=-1, latency_ms=0.0), ns)


def run(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(17, "--out exists and is not a folder", str(out))
    with Staging(out) as stage:  # earlier demos in --out stay until the new ones are complete
        summary = _generate(args, stage)
        stage.commit()
    print(json.dumps(summary, indent=2))
    return 0


def _generate(args, stage: Staging) -> dict:
    import numpy as np

    from edge_inference.sim.behaviors import BEHAVIOR_CLASSES
    from edge_inference.sim.board_link import load_sim_calibration
    from edge_inference.sim.demonstrations import DemoConfig, generate_demos, imu_windows

    cfg = DemoConfig(episodes=args.episodes, seconds=args.seconds, image_size=tuple(args.image_size),
                     steer_noise=args.steer_noise, seed=args.seed)
    t0 = time.monotonic()
    writer = None
    recorders = {}
    if args.bag_episodes > 0:
        from edge_inference.core.bag_io import BagWriter
        writer = BagWriter(stage.path("bag"), storage="mcap", compress=True).__enter__()

    def on_frame(ep, frame):
        if writer is None or ep >= args.bag_episodes:
            return
        if ep not in recorders:
            recorders[ep] = _BagRecorder(writer, int(1.7e18) + ep * int(1e12), BEHAVIOR_CLASSES)
        recorders[ep](frame)

    def progress(done, n):
        print(f"episode {done}/{cfg.episodes}: {n} frames ({time.monotonic() - t0:.1f} s)", flush=True)

    try:
        demos = generate_demos(cfg, load_sim_calibration(), on_frame, progress)
    finally:
        if writer is not None:
            writer.close()
    np.savez_compressed(stage.path("demos.npz"), **demos)
    summary = {"frames": int(len(demos["actions"])), "episodes": cfg.episodes, "fps": cfg.fps,
               "image_size": list(cfg.image_size), "seconds": round(time.monotonic() - t0, 1)}
    if args.imu_drives > 0:
        w = imu_windows(n_drives=args.imu_drives, seed=args.seed)
        np.savez_compressed(stage.path("imu_windows.npz"), **w)
        names, counts = np.unique(w["labels"], return_counts=True)
        summary["imu_windows"] = {str(n): int(c) for n, c in zip(names, counts)}
    if writer is not None:
        summary["bag_messages"] = dict(writer.counts)
    stage.path("summary.json").write_text(json.dumps(summary, indent=2))
    return summary
