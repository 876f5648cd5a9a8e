"""The ROS shell.

``nodes/`` holds the node classes, which only wire parameters, QoS, topics, services
and timers to the cores; beside them the ROS helpers they share (parameters, QoS,
diagnostics, image conversion, stamps, the graph description and its runner).
"""
