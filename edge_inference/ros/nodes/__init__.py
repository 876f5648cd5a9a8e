"""ROS 2 shells: each node wires parameters, QoS, topics and timers to a pure core."""
