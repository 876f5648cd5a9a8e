"""Run a graph description's nodes in this process (``edge-inference up``, ``drive-sim``, tests)."""
from __future__ import annotations


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
        from rclpy.exceptions import ParameterException

        from edge_inference.core.config_fields import ParameterError
        from edge_inference.ros.graph import GraphConfigError
        try:
            for spec in specs:
                overrides = [Parameter(k, value=v) for k, v in spec.parameters.items()]
                try:
                    node = spec.node_class()(parameter_overrides=overrides, context=context, **spec.node_kwargs())
                except (ParameterException, ParameterError) as err:  # say which node's parameter
                    raise GraphConfigError(f"{spec.name}: {err}") from err
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
