"""`edge-inference up`: the whole rover graph in one process (no `ros2 launch` needed).

Uses the same description as ``launch/rover.launch.py``; every node gets its own
parameters as overrides and they all spin on one MultiThreadedExecutor.
"""
from __future__ import annotations

import argparse
import time

import yaml


def parse_param_overrides(items: list[str]) -> dict[str, dict]:
    """['policy_node.mode=ensemble', ...] -> {'policy_node': {'mode': 'ensemble'}} (YAML-typed values)."""
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, name = key.partition(".")
        if not sep or not dot or not node or not name:
            raise SystemExit(f"--param expects NODE.NAME=VALUE, got {item!r}")
        out.setdefault(node, {})[name] = yaml.safe_load(value)
    return out


def add_graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="cpu", choices=["cpu", "npu"])
    p.add_argument("--camera-source", default=None)
    p.add_argument("--serial-port", default=None)
    p.add_argument("--config", default=None, help="parameter YAML replacing config/rover.yaml")
    p.add_argument("--use-sim-time", action="store_true")
    p.add_argument("--param", action="append", default=[], metavar="NODE.NAME=VALUE")


def register(sub) -> None:
    p = sub.add_parser("up", help="run the rover graph in one process (multi-threaded executor)")
    add_graph_args(p)
    p.add_argument("--sim", action="store_true", help="include the simulator node")
    p.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0 = until Ctrl-C)")
    p.set_defaults(func=run)


class Graph:
    """Nodes of a description instantiated in this process, spinning on one executor."""

    def __init__(self, specs, context=None):
        import threading

        from rclpy.executors import MultiThreadedExecutor
        from rclpy.parameter import Parameter
        self.nodes = []
        self.executor = MultiThreadedExecutor(num_threads=max(4, len(specs) * 2), context=context)
        try:
            for spec in specs:
                overrides = [Parameter(k, value=v) for k, v in spec.parameters.items()]
                node = spec.node_class()(parameter_overrides=overrides, context=context)
                self.nodes.append(node)
                self.executor.add_node(node)
        except Exception:
            self.close()
            raise
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self):
        try:
            self.executor.spin()
        except Exception as exc:  # ExternalShutdownException on shutdown
            if not type(exc).__name__.endswith("ShutdownException"):
                raise

    def start(self) -> "Graph":
        self._thread.start()
        return self

    def node(self, name: str):
        return next(n for n in self.nodes if n.get_name() == name)

    def kill(self, name: str) -> None:
        """Stop one node abruptly (tests: a dead policy, a dead camera)."""
        node = self.node(name)
        self.executor.remove_node(node)
        self.nodes.remove(node)
        node.destroy_node()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        for n in self.nodes:
            n.destroy_node()
        self.nodes = []


def run(args) -> int:
    import rclpy

    from ..graph import describe
    specs = describe(backend=args.backend, camera_source=args.camera_source, serial_port=args.serial_port,
                     config=args.config, use_sim_time=args.use_sim_time, with_sim=args.sim,
                     overrides=parse_param_overrides(args.param))
    rclpy.init()
    graph = Graph(specs).start()
    print("running: " + ", ".join(s.name for s in specs), flush=True)
    try:
        t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        while time.monotonic() < t_end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        graph.close()
        rclpy.try_shutdown()
    return 0
