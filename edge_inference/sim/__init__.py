"""A lightweight simulated rover: track world, bicycle dynamics, camera renderer, IMU model, expert driver, simulated board.

Plain numpy/OpenCV, no ROS: the nodes in ``edge_inference.ros.nodes.sim_node`` wrap it.
"""
