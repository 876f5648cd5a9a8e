"""`edge-inference top`: a live terminal dashboard of the running graph (works over SSH).

Subscribes over DDS like any other node and redraws one table in place (rich):
per topic rate and age, per model latency p50/p95 from the InferenceStats
topics, the current command and board mode, the behavior label, the serial
link and any diagnostics that are not OK. The camera and IMU topics are taken
as raw bytes (never deserialized), so watching costs the robot almost nothing.
The bookkeeping (``Dashboard``) is plain Python, separate from the ROS shell.
"""
from __future__ import annotations

import time

from edge_inference.commands.arg_types import non_negative_float, positive_float
from edge_inference.ros.dashboard import TOPICS, Dashboard, render


def register(sub) -> None:
    p = sub.add_parser("top", help="live terminal dashboard of the running graph (rates, latencies, command, link)")
    p.add_argument("--duration", type=non_negative_float, default=0.0, help="exit after this many seconds (0: until Ctrl-C)")
    p.add_argument("--once", action="store_true",
                   help="listen for --duration seconds (default 3), print the table once and exit")
    p.add_argument("--refresh-hz", type=positive_float, default=2.0, help="redraws per second")
    p.set_defaults(func=run)


def run(args) -> int:
    import importlib
    import os

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rich.console import Console
    from rich.live import Live

    from edge_inference.ros.qos import qos_from_name

    duration = args.duration if args.duration > 0 else (3.0 if args.once else float("inf"))
    rclpy.init()
    node = Node("edge_inference_top")
    dash = Dashboard(started=time.monotonic())
    for key, topic, type_name, qos, raw in TOPICS:
        pkg, _, name = type_name.split("/")
        cls = getattr(importlib.import_module(f"{pkg}.msg"), name)
        node.create_subscription(cls, topic, lambda m, k=key: dash.on_message(k, m, time.monotonic()),
                                 qos_from_name(qos, 10), raw=raw)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    console = Console()
    t0 = time.monotonic()
    title = f"edge-inference top  (ROS_DOMAIN_ID {os.environ.get('ROS_DOMAIN_ID', '0')})"
    try:
        if args.once:
            while time.monotonic() - t0 < duration:
                ex.spin_once(timeout_sec=0.05)
            console.print(render(dash, time.monotonic(), title, console.height))
            return 0
        period = 1.0 / args.refresh_hz
        with Live(render(dash, time.monotonic(), title, console.height), console=console, auto_refresh=False,
                  screen=False) as live:
            next_draw = time.monotonic()
            while time.monotonic() - t0 < duration:
                ex.spin_once(timeout_sec=0.05)
                now = time.monotonic()
                if now >= next_draw:
                    live.update(render(dash, now, title, console.height), refresh=True)
                    next_draw = now + period
    except KeyboardInterrupt:
        pass
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
