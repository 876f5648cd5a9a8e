"""ROS-free cores: plain Python + numpy, tested without ROS.

Nothing here imports rclpy or a ROS message package, nor any other part of the
package (test/test_layout.py keeps it so).
"""
