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
    try:
        import edge_inference_msgs.msg  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.fixture
def ros_context():
    """An initialised rclpy Context, shut down after the test."""
    import rclpy
    if not _msgs_available():
        pytest.fail("edge_inference_msgs is not importable: run tests through `make test` "
                    "(or `make msgs && source tools/env.sh`)")
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
