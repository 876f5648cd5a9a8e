"""`edge-inference up`: the whole rover graph in one process (no `ros2 launch` needed).

Uses the same description as ``launch/rover.launch.py``; every node gets its own
parameters as overrides and they all spin on one executor (events by default, multi-threaded on request).
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
        parsed = yaml.safe_load(value) if value.strip() else ""
        out.setdefault(node, {})[name] = "" if parsed is None else parsed
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
    p.add_argument("--sim", action="store_true",
                   help="include the simulator: sim camera, simulated board on a pty, policy enabled")
    p.add_argument("--executor", default="events", choices=["events", "multi"])
    p.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0 = until Ctrl-C)")
    p.set_defaults(func=run)


class Graph:
    """Nodes of a description instantiated in this process, spinning in one background thread.

    executor="events" (default where rclpy has it): rclpy's EventsExecutor, looped
    with ``spin_once``. With ~200 timer callbacks/s (simulator + camera + control
    loops) the MultiThreadedExecutor's wait-set and future overhead took most of a
    core here and the simulator fell to ~55 % of its rates; the events executor
    dispatches from a C++ queue. The policy node runs inference in its own worker
    thread, so a single dispatch thread blocks nothing. ``spin()`` of the events
    executor ran no timers with the Kilted wheels, hence the ``spin_once`` loop.
    executor="multi": MultiThreadedExecutor (the fallback).
    """

    def __init__(self, specs, context=None, executor: str = "events"):
        import threading

        from rclpy.parameter import Parameter
        if executor == "events" and not self.events_available():
            executor = "multi"
        if executor == "events":
            from rclpy.experimental import EventsExecutor
            self.executor = EventsExecutor(context=context)
        elif executor == "multi":
            from rclpy.executors import MultiThreadedExecutor
            self.executor = MultiThreadedExecutor(num_threads=max(4, len(specs) * 2), context=context)
        else:
            raise ValueError(f"executor must be 'events' or 'multi', not {executor!r}")
        self.kind = executor
        self.nodes = []
        try:
            for spec in specs:
                overrides = [Parameter(k, value=v) for k, v in spec.parameters.items()]
                node = spec.node_class()(parameter_overrides=overrides, context=context)
                self.nodes.append(node)
                self.executor.add_node(node)
        except Exception:
            self.close()
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name=f"graph-{executor}-executor", daemon=True)

    @staticmethod
    def events_available() -> bool:
        try:
            from rclpy.experimental import EventsExecutor  # noqa: F401
        except ImportError:
            return False
        return True

    def _spin(self):
        from rclpy.executors import ExternalShutdownException
        try:
            while not self._stop.is_set():
                self.executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            pass

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
        if hasattr(self, "_stop"):
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join(timeout=2.0)
        self.executor.shutdown()
        for n in self.nodes:
            n.destroy_node()
        self.nodes = []


def sim_overrides(board_port: str) -> dict[str, dict]:
    """Wire the simulator into the rover graph: sim camera, bridge on the simulated board's port."""
    return {"camera_node": {"camera_source": "sim"},
            "sim_node": {"board_port": board_port},
            "pwm_bridge_node": {"serial_port": board_port, "arm_on_connect": True},
            "policy_node": {"enabled": True}}


def run(args) -> int:
    import rclpy

    from ..graph import describe
    from ..graph import merge_params
    overrides = parse_param_overrides(args.param)
    tmpdir = None
    if args.sim:
        import tempfile
        tmpdir = tempfile.TemporaryDirectory(prefix="edge-inference-sim-")
        overrides = merge_params(sim_overrides(f"{tmpdir.name}/ttyBOARD"), overrides)
    specs = describe(backend=args.backend, camera_source=args.camera_source, serial_port=args.serial_port,
                     config=args.config, use_sim_time=args.use_sim_time, with_sim=args.sim, overrides=overrides)
    rclpy.init()
    graph = Graph(specs, executor=args.executor).start()
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
        if tmpdir is not None:
            tmpdir.cleanup()
    return 0
