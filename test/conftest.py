"""Shared fixtures: a private ROS domain per test session and an rclpy context per test."""
from __future__ import annotations

import os
import random

# Before any rclpy import: keep concurrent test runs on this machine apart and
# keep DDS discovery on loopback.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import pytest  # noqa: E402


def _msgs_available() -> bool:
    """The built interfaces, not just a package named edge_inference_msgs: with the checkout
    on sys.path its source folder imports as an empty namespace package, so import a class."""
    try:
        from edge_inference_msgs.msg import VehicleCommand  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.fixture
def built_msgs() -> None:
    """Fails (does not skip) the test when the interfaces are not built for this Python."""
    if not _msgs_available():
        pytest.fail("edge_inference_msgs is not built for this Python: run tests through `make test` / "
                    "`make test-robot` (or `make msgs && source scripts/env.sh`)")


@pytest.fixture
def ros_context(built_msgs):
    """An initialised rclpy Context, shut down after the test."""
    import rclpy
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def spin_until(executor, predicate, timeout_s: float) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout_s`` passes."""
    import time
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


class BridgeProcess:
    """The pwm_bridge_node executable in its own process, as deployed (``spin_node``), armed
    on connect to ``port_path``, plus a probe node that publishes vehicle/command to it.
    A context manager; the process is killed on exit if it still runs."""

    def __init__(self, context, port_path: str, probe_name: str):
        import subprocess
        import sys

        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from edge_inference.ros.qos import reliable_qos
        from edge_inference_msgs.msg import VehicleCommand

        self.process = subprocess.Popen(
            [sys.executable, "-c", "from edge_inference.ros.nodes.pwm_bridge_node import main; main()",
             "--ros-args", "-p", f"serial_port:={port_path}", "-p", "arm_on_connect:=true"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._command_class = VehicleCommand
        self.probe = Node(probe_name, context=context)
        self.pub = self.probe.create_publisher(VehicleCommand, "vehicle/command", reliable_qos(10))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.probe)

    def command(self, steering: float, throttle: float) -> None:
        self.pub.publish(self._command_class(steering=steering, throttle=throttle,
                                             source=self._command_class.SOURCE_POLICY))

    def drive_until(self, predicate, timeout_s: float = 30.0) -> bool:
        """Command (0.5, 0.5) every ~20 ms until ``predicate()``; fails if the process dies."""
        import time
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not predicate():
            self.command(0.5, 0.5)
            self.executor.spin_once(timeout_sec=0.02)
            assert self.process.poll() is None, self.process.stderr.read().decode()[-2000:]
        return predicate()

    def __enter__(self) -> "BridgeProcess":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
        self.executor.shutdown()
        self.probe.destroy_node()
