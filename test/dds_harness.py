"""A node under test and a probe node, each spun on its own executor thread, over real DDS.

Separate executors keep the probe's receive times free of the node's callbacks;
threads stop on an event (not ``executor.shutdown()`` mid-spin, which races
with the executor's guard condition).
"""
from __future__ import annotations

import time

from edge_inference.ros.spin import spin_in_threads


class NodeHarness:
    def __init__(self, ctx, node, probe_name: str):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.ctx, self.node = ctx, node
        self.probe = Node(probe_name, context=ctx)
        self.executors = [SingleThreadedExecutor(context=ctx) for _ in range(2)]
        self.executors[0].add_node(node)
        self.executors[1].add_node(self.probe)
        self._stop, self._threads = None, []

    def start(self) -> None:
        """Spin both nodes (call after the probe's subscriptions/publishers exist)."""
        self._stop, self._threads = spin_in_threads(self.executors)

    @staticmethod
    def wait_for(predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not predicate():
            time.sleep(0.02)
        return predicate()

    def call_set_bool(self, service: str, value: bool):
        """Call a std_srvs/SetBool service from the probe; the response must say success."""
        from std_srvs.srv import SetBool
        client = self.probe.create_client(SetBool, service)
        assert client.wait_for_service(timeout_sec=5.0), f"service {service} not available"
        future = client.call_async(SetBool.Request(data=value))
        assert self.wait_for(future.done, 5.0), f"no answer from {service}"
        assert future.result().success
        return future.result()

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        for t in self._threads:
            t.join(timeout=5.0)
        self.node.destroy_node()
        self.probe.destroy_node()
        for ex in self.executors:
            ex.shutdown()
