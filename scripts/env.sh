# Source me: the ROS 2 environment of the dev/CI virtual environment.
# On the robot, source /opt/ros/jazzy/setup.bash and install/setup.bash instead.
_ei_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
_ei_venv="${EI_VENV:-$_ei_root/.venv}"
_ei_msgs="$_ei_root/.build/msgs_install"
export AMENT_PREFIX_PATH="$_ei_msgs:$_ei_root/.build/ament_index:$_ei_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export LD_LIBRARY_PATH="$_ei_msgs/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$_ei_msgs/lib/python3.11/site-packages:$_ei_root${PYTHONPATH:+:$PYTHONPATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export PATH="$_ei_venv/bin:$PATH"
unset _ei_root _ei_venv _ei_msgs
# Keep DDS discovery on this machine unless told otherwise (set to SUBNET on the robot/laptop graph).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
