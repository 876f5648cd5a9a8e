"""`edge-inference demo` (`make demo`): the simulated rover, bounded in time.

Walking-skeleton version: synthetic camera, a synthetic IMU stream and a
pty-attached board emulator, all nodes on real DDS in one process. Prints live
rates and latencies, then a summary; exits 0 when the graph did its job.
"""
from __future__ import annotations

import math
import time


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the simulated rover for a bounded time and print a summary")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run")
    p.add_argument("--backend", default="cpu", choices=["cpu", "npu"])
    p.set_defaults(func=run)


class _Monitor:
    """Counts and latencies of the graph's outputs, seen from a separate node."""

    def __init__(self, node):
        from edge_inference_msgs.msg import ActionChunk, BehaviorState, VehicleCommand, VehicleState

        from ..qos import reliable_qos
        self.node = node
        self.counts = {"chunk": 0, "cmd": 0, "behavior": 0, "state": 0}
        self.chunk_latency_ms: list[float] = []
        self.last = {}
        for key, typ, topic in [("chunk", ActionChunk, "policy/action_chunk"), ("cmd", VehicleCommand, "vehicle/command"),
                                ("behavior", BehaviorState, "behavior/state"), ("state", VehicleState, "vehicle/state")]:
            node.create_subscription(typ, topic, lambda m, k=key: self._on(k, m), reliable_qos())

    def _on(self, key, msg):
        self.counts[key] += 1
        self.last[key] = msg
        if key == "chunk":
            self.chunk_latency_ms.append(float(msg.latency_ms))


def run(args) -> int:
    import numpy as np
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Imu, MagneticField

    from ..board_emulator import BoardEmulator
    from ..graph import describe
    from ..qos import sensor_qos
    from .up import Graph

    board = BoardEmulator().start()
    specs = describe(backend=args.backend, camera_source="synthetic", serial_port=board.port_path, overrides={
        "policy_node": {"backend": "temporary", "model_path": "", "enabled": True},
        "behavior_node": {"backend": "temporary", "model_path": ""},
        "pwm_bridge_node": {"arm_on_connect": True},
    })
    rclpy.init()
    graph = Graph(specs).start()
    probe = Node("demo_monitor")
    mon = _Monitor(probe)
    imu_pub = probe.create_publisher(Imu, "imu/data_raw", sensor_qos())
    mag_pub = probe.create_publisher(MagneticField, "imu/mag", sensor_qos())
    t0 = time.monotonic()

    def publish_imu():
        t = time.monotonic() - t0
        stamp = probe.get_clock().now().to_msg()
        m = Imu()
        m.header.stamp, m.header.frame_id = stamp, "imu_link"
        m.linear_acceleration.x = 0.5 * math.sin(t)
        m.linear_acceleration.z = 9.81
        m.angular_velocity.z = 0.3 * math.sin(0.5 * t)
        imu_pub.publish(m)
        g = MagneticField()
        g.header = m.header
        g.magnetic_field.x = 2e-5
        mag_pub.publish(g)

    probe.create_timer(0.01, publish_imu)
    from rclpy.executors import SingleThreadedExecutor
    ex = SingleThreadedExecutor()
    ex.add_node(probe)
    last_print, prev = t0, dict(mon.counts)
    try:
        while time.monotonic() - t0 < args.duration:
            ex.spin_once(timeout_sec=0.05)
            now = time.monotonic()
            if now - last_print >= 2.0:
                rates = {k: (mon.counts[k] - prev[k]) / (now - last_print) for k in mon.counts}
                lat = np.percentile(mon.chunk_latency_ms[-60:], 50) if mon.chunk_latency_ms else float("nan")
                beh = mon.last.get("behavior")
                print(f"[{now - t0:5.1f}s] cmd {rates['cmd']:5.1f} Hz  chunks {rates['chunk']:4.1f} Hz  "
                      f"chunk latency p50 {lat:6.1f} ms  board PWM {board.applied_us}  "
                      f"behavior {beh.label if beh else '-'}", flush=True)
                last_print, prev = now, dict(mon.counts)
    finally:
        ex.shutdown()
        probe.destroy_node()
        graph.close()
        rclpy.try_shutdown()
        board.stop()
    elapsed = time.monotonic() - t0
    lat = np.array(mon.chunk_latency_ms) if mon.chunk_latency_ms else np.array([np.nan])
    print("\n=== demo summary ===")
    print(f"duration            {elapsed:.1f} s")
    print(f"commands            {mon.counts['cmd']} ({mon.counts['cmd'] / elapsed:.1f} Hz)")
    print(f"action chunks       {mon.counts['chunk']} (latency p50 {np.nanpercentile(lat, 50):.1f} ms, p95 {np.nanpercentile(lat, 95):.1f} ms)")
    print(f"behavior states     {mon.counts['behavior']}")
    print(f"vehicle states      {mon.counts['state']}")
    print(f"serial frames       bridge->board {board.frames_received} ({board.commands_received} commands)")
    ok = mon.counts["cmd"] > 0 and mon.counts["chunk"] > 0 and mon.counts["state"] > 0
    print("result              " + ("OK" if ok else "FAILED: the graph did not produce commands/chunks/states"))
    return 0 if ok else 1
