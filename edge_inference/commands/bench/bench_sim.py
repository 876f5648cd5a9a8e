"""`edge-inference bench-sim`: simulator speed on one core (renderer, dynamics, IMU, expert), JSON out.

The renderer must sustain 30 fps at 320x180 on one core next to the rest of the
graph; this measures it with OpenCV limited to one thread: per-call median/p95
in ms and the frame rate the median allows.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from edge_inference.commands.arg_types import positive_int
from edge_inference.core.files import write_text_atomic


def register(sub) -> None:
    p = sub.add_parser("bench-sim", help="simulator speed on one core (render, dynamics, IMU, expert) -> JSON")
    p.add_argument("--json", default="artifacts/bench_sim.json")
    p.add_argument("--frames", type=positive_int, default=300)
    p.set_defaults(func=run)


def _timeit(fn, n: int) -> dict:
    import numpy as np
    for _ in range(min(20, n)):
        fn()
    t = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        t[i] = (time.perf_counter() - t0) * 1e3
    p50 = float(np.percentile(t, 50))
    return {"median_ms": round(p50, 4), "p95_ms": round(float(np.percentile(t, 95)), 4), "n": n,
            "rate_at_median_hz": round(1e3 / p50, 1) if p50 > 0 else None}


def run(args) -> int:
    import cv2

    from edge_inference.sim.dynamics import CarState, VehicleConfig, command_to_targets, step
    from edge_inference.sim.expert import PurePursuitExpert
    from edge_inference.sim.imu_model import ImuModel
    from edge_inference.sim.render import CameraConfig, LightingConfig, Renderer
    from edge_inference.sim.track import Track

    cv2.setNumThreads(1)
    track = Track()
    out = {"opencv_threads": cv2.getNumThreads(), "track_length_m": round(track.length, 2)}
    s_values = [track.length * i / args.frames for i in range(args.frames)]
    for w, h in ((320, 180), (640, 360)):
        r = Renderer(track, CameraConfig(width=w, height=h), LightingConfig(noise_std=3.0, shadows=2))
        i = [0]

        def render():
            s = s_values[i[0] % len(s_values)]
            x, y = track.point_at(s)
            r.render(x, y, track.heading_at(s))
            i[0] += 1
        out[f"render_{w}x{h}"] = _timeit(render, args.frames)
    veh, state = VehicleConfig(), CarState(*track.start_pose())
    targets = command_to_targets(veh, 0.3, 0.5)
    out["dynamics_step"] = _timeit(lambda: step(veh, state, *targets, 0.01), 2000)
    imu = ImuModel()
    out["imu_read"] = _timeit(lambda: imu.read(state), 2000)
    expert = PurePursuitExpert(track, veh)
    out["expert_act"] = _timeit(lambda: expert.act(state), 2000)
    r320 = out["render_320x180"]
    out["render_320x180_meets_30fps_one_core"] = r320["p95_ms"] < 1e3 / 30
    write_text_atomic(Path(args.json), json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0
