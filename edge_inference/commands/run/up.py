"""`edge-inference up`: the whole rover graph in one process (no `ros2 launch` needed).

Uses the same description as ``launch/rover.launch.py``; every node gets its own
parameters as overrides and they all spin on one executor (events by default, multi-threaded on request).
"""
from __future__ import annotations

import argparse
import time

from edge_inference.commands.arg_types import non_negative_float
from edge_inference.ros.graph import describe, merge_params, parse_param_overrides, preflight, sim_overrides
from edge_inference.ros.graph_runner import Graph


def add_graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="cpu", choices=["cpu", "npu"])
    p.add_argument("--camera-source", default=None)
    p.add_argument("--serial-port", default=None)
    p.add_argument("--config", default=None,
                   help="parameter YAML overlaid on config/rover.yaml + config/backends/<backend>.yaml")
    p.add_argument("--policy-model", default=None, help="policy model directory (default: the backend's shipped one)")
    p.add_argument("--behavior-model", default=None,
                   help="behavior model directory (default: the backend's shipped one)")
    p.add_argument("--camera-topic", default=None, help="image topic the policy reads (--camera-source external)")
    p.add_argument("--namespace", default=None, help="run every node under /NAMESPACE (two cars on one domain)")
    p.add_argument("--use-sim-time", action="store_true")
    p.add_argument("--param", action="append", default=[], metavar="NODE.NAME=VALUE")


def register(sub) -> None:
    p = sub.add_parser("up", help="run the rover graph in one process (multi-threaded executor)")
    add_graph_args(p)
    p.add_argument("--sim", action="store_true",
                   help="include the simulator: sim camera, simulated board on a pty, policy enabled")
    p.add_argument("--executor", default="events", choices=["events", "multi"])
    p.add_argument("--duration", type=non_negative_float, default=0.0, help="stop after N seconds (0 = until Ctrl-C)")
    p.set_defaults(func=run)


def run(args) -> int:
    import rclpy

    overrides = parse_param_overrides(args.param)
    tmpdir = None
    if args.sim:
        import tempfile
        tmpdir = tempfile.TemporaryDirectory(prefix="edge-inference-sim-")
        overrides = merge_params(sim_overrides(f"{tmpdir.name}/ttyBOARD"), overrides)
    specs = describe(backend=args.backend, camera_source=args.camera_source, serial_port=args.serial_port,
                     config=args.config, use_sim_time=args.use_sim_time, with_sim=args.sim, overrides=overrides,
                     policy_model=args.policy_model, behavior_model=args.behavior_model,
                     camera_topic=args.camera_topic, namespace=args.namespace)
    preflight(specs)  # every model file present, before any node starts
    rclpy.init()
    graph = None
    try:
        graph = Graph(specs, executor=args.executor).start()  # bad parameter values fail here, before running
        print("running: " + ", ".join(s.name for s in specs), flush=True)
        t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        while time.monotonic() < t_end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if graph is not None:
            graph.close()
        rclpy.try_shutdown()
        if tmpdir is not None:
            tmpdir.cleanup()
    return 0
