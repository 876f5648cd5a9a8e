"""`edge-inference bench-monitor`: what the debug views cost on the robot's CPU -> JSON.

Measures, in one run: the chunk path integration and MarkerArray build, the
overlay drawing at the camera sizes, and monitor_node's per-frame camera
callback with nobody watching (frame taken raw and dropped) vs with an overlay
subscriber (deserialize, draw, publish). JSON: ``{"path": {...}, "markers": {...},
"overlay": {"320x180": {...}, "640x360": {...}}, "monitor_frame": {"unwatched":
{...}, "watched": {...}}, "ratios": {"watched_over_unwatched": ...}, "config": {...}}``
with p50/p95/p99/mean in ms for each entry.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from edge_inference.commands.arg_types import positive_int
from edge_inference.core.files import write_text_atomic
from edge_inference.evaluation.model_bench import percentiles


def register(subparsers) -> None:
    p = subparsers.add_parser("bench-monitor", help="cost of markers, overlay and monitor_node per frame (JSON)",
                              description=__doc__)
    p.add_argument("--json", default="artifacts/bench_monitor.json", help="JSON output path")
    p.add_argument("--runs", type=positive_int, default=200, help="timed repetitions per measurement")
    p.set_defaults(func=run)


def timed(fn, runs: int) -> dict:
    fn()  # warm-up (imports, caches)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return percentiles(out)


def bench_cores(runs: int) -> dict:
    from std_msgs.msg import Header

    from edge_inference.core.overlay import CameraMountConfig, OverlayContent, draw_overlay, intrinsics_from_fov
    from edge_inference.core.path_prediction import PathModelConfig, integrate_chunk
    from edge_inference.ros.markers import build_marker_array
    cfg, mount = PathModelConfig(), CameraMountConfig()
    rng = np.random.default_rng(0)
    chunk32 = rng.uniform(-1, 1, (32, 2))
    chunk100 = rng.uniform(-1, 1, (100, 2))
    poses = integrate_chunk(chunk32, 1 / 30, cfg)
    result = {"path": {"h32": timed(lambda: integrate_chunk(chunk32, 1 / 30, cfg), runs),
                       "h100": timed(lambda: integrate_chunk(chunk100, 1 / 30, cfg), runs)},
              "markers": timed(lambda: build_marker_array(Header(frame_id="base_link"), cfg, poses, (0.2, 0.3)), runs),
              "overlay": {}}
    for w, h in ((320, 180), (640, 360)):
        frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        content = OverlayContent(steering=0.2, throttle=0.3, path_base=poses, behavior_label="driving",
                                 behavior_confidence=0.9, latency_ms=30.0, source="policy")
        K = intrinsics_from_fov(w, h, 90.0)
        result["overlay"][f"{w}x{h}"] = timed(lambda: draw_overlay(frame, content, K, mount), runs)
    return result


def bench_monitor_frame(runs: int, width: int = 320, height: int = 180) -> dict:
    """monitor_node's camera callback on one serialized frame, unwatched vs watched (real DDS publisher)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from edge_inference.ros.image_conversion import rgb_to_image_msg
    from edge_inference.ros.nodes.monitor_node import MonitorNode
    from edge_inference.ros.qos import sensor_qos
    from edge_inference_msgs.msg import ActionChunk, BehaviorState, VehicleCommand
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        mon = MonitorNode(context=ctx, parameter_overrides=[Parameter("overlay_max_hz", value=120.0)])
        data = serialize_message(rgb_to_image_msg(np.full((height, width, 3), 90, np.uint8)))
        # what a running graph has given the node: a 32-step chunk, a command, a behavior state
        mon._on_chunk(ActionChunk(horizon=32, action_dim=2, dt=1 / 30, action_names=["steering", "throttle"],
                                  actions=np.tile([0.3, 0.4], 32).astype(np.float32).tolist(), latency_ms=30.0))
        mon._on_command(VehicleCommand(steering=0.3, throttle=0.4, source=VehicleCommand.SOURCE_POLICY))
        mon._on_behavior(BehaviorState(label="driving", confidence=0.9))

        def call():
            mon._last_overlay_t = 0.0  # measure drawing, not the rate limit
            mon._on_image_raw(data)
        unwatched = timed(call, runs)
        probe = Node("bench_monitor_probe", context=ctx)
        probe.create_subscription(Image, "monitor/overlay", lambda m: None, sensor_qos())
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(mon)
        ex.add_node(probe)
        deadline = time.monotonic() + 10.0
        while mon.pub_overlay.get_subscription_count() == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        if mon.pub_overlay.get_subscription_count() == 0:
            raise RuntimeError("overlay subscriber not matched within 10 s: DDS discovery is not working")
        watched = timed(call, runs)
        ex.shutdown()
        probe.destroy_node()
        mon.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
    return {"unwatched": unwatched, "watched": watched, "frame": f"{width}x{height}"}


def run(args) -> int:
    result = bench_cores(args.runs)
    result["monitor_frame"] = bench_monitor_frame(args.runs)
    mf = result["monitor_frame"]
    result["ratios"] = {"watched_over_unwatched": mf["watched"]["p50_ms"] / max(mf["unwatched"]["p50_ms"], 1e-9),
                        "overlay_640_over_320": result["overlay"]["640x360"]["p50_ms"]
                        / max(result["overlay"]["320x180"]["p50_ms"], 1e-9)}
    result["config"] = {"runs": args.runs, "machine": platform.machine(), "python": platform.python_version()}
    out = Path(args.json)
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    print(f"overlay 320x180 p50 {result['overlay']['320x180']['p50_ms']:.2f} ms, "
          f"640x360 p50 {result['overlay']['640x360']['p50_ms']:.2f} ms; path h100 p50 "
          f"{result['path']['h100']['p50_ms']:.3f} ms; monitor frame unwatched p50 {mf['unwatched']['p50_ms']:.4f} ms "
          f"vs watched {mf['watched']['p50_ms']:.2f} ms -> {out}")
    return 0
