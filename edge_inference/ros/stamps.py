"""Conversions between ROS stamps and integer nanoseconds.

All cores keep time as int ns taken from header stamps (never wall clock), so they
behave the same under ``use_sim_time`` and in offline replay.
"""
from builtin_interfaces.msg import Time


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> int ns."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """int ns -> builtin_interfaces/Time."""
    ns = int(ns)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def now_ns(node) -> int:
    """The node's clock (ROS time: sim time when use_sim_time is set)."""
    return node.get_clock().now().nanoseconds
