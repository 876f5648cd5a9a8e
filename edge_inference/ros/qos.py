"""QoS profiles used across the graph, selectable by name from parameters."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def sensor_qos(depth: int = 1) -> QoSProfile:
    """Camera/IMU: best effort, keep last ``depth``. A late frame is worth nothing."""
    return QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST,
                      depth=depth, durability=DurabilityPolicy.VOLATILE)


def reliable_qos(depth: int = 10) -> QoSProfile:
    """Commands, states, chunks: reliable so a subscriber sees every message."""
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                      depth=depth, durability=DurabilityPolicy.VOLATILE)


def qos_from_name(name: str, depth: int = 1) -> QoSProfile:
    """Map a parameter value ("sensor"/"best_effort" or "reliable") to a profile."""
    key = name.strip().lower()
    if key in ("sensor", "best_effort", "sensor_data"):
        return sensor_qos(depth)
    if key == "reliable":
        return reliable_qos(depth)
    raise ValueError(f"unknown QoS profile {name!r}: use 'sensor' (best effort) or 'reliable'")
