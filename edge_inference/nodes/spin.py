"""The one ``main()`` body every node executable shares: init, spin, destroy, shutdown."""
from __future__ import annotations

import rclpy
import rclpy.executors


def spin_node(node_class, args=None) -> None:
    """Run one node on a multi-threaded executor (nodes use callback groups for
    timers that must not wait behind subscriptions) until Ctrl-C or shutdown."""
    rclpy.init(args=args)
    node = node_class()
    executor = rclpy.executors.MultiThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
