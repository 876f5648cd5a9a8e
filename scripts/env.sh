# Source me: the ROS 2 environment of a dev/CI virtual environment.
#   EI_VENV  the venv (default .venv; `make test-robot` uses .venv-robot)
#   EI_MSGS  its built interfaces (default .build/msgs_install; robot profile: .build/robot/msgs_install)
# On the robot, source /opt/ros/jazzy/setup.bash and install/setup.bash instead.
_ei_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
_ei_venv="${EI_VENV:-$_ei_root/.venv}"
_ei_msgs="${EI_MSGS:-$_ei_root/.build/msgs_install}"
[ -d "$_ei_venv" ] && _ei_venv=$(cd "$_ei_venv" && pwd)
case "$_ei_msgs" in /*) ;; *) _ei_msgs="$_ei_root/$_ei_msgs" ;; esac
# The built interfaces' site-packages is named for the venv interpreter's version
# (python3.11, python3.12, ...). Ask the interpreter; -I: PYTHONPATH and the cwd do not count.
_ei_probe=$("$_ei_venv/bin/python" -I -c 'import importlib.util, sys
spec = importlib.util.find_spec("edge_inference")
print("python%d.%d" % sys.version_info[:2]); print(spec.origin if spec else "")' 2>/dev/null) \
  || echo "scripts/env.sh: warning: no Python in $_ei_venv (run make venv)" >&2
_ei_pyver=$(printf '%s\n' "$_ei_probe" | sed -n 1p)
_ei_pkg=$(printf '%s\n' "$_ei_probe" | sed -n 2p)
_ei_site="$_ei_msgs/lib/${_ei_pyver:-python3}/site-packages"
[ -d "$_ei_site/edge_inference_msgs" ] \
  || echo "scripts/env.sh: warning: edge_inference_msgs is not built for ${_ei_pyver:-this venv} in $_ei_msgs (run make msgs)" >&2
export AMENT_PREFIX_PATH="$_ei_msgs:$_ei_root/.build/ament_index:$_ei_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export LD_LIBRARY_PATH="$_ei_msgs/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# edge_inference comes from the venv's editable install, so the checkout is not on the
# path: its edge_inference_msgs/ source folder would import as an empty namespace package
# where the build is missing. Only when the venv's install is another checkout (a git
# worktree sharing a venv) is this one added, after the built interfaces.
case "$_ei_pkg" in
  "$_ei_root"/*) export PYTHONPATH="$_ei_site${PYTHONPATH:+:$PYTHONPATH}" ;;
  *) export PYTHONPATH="$_ei_site:$_ei_root${PYTHONPATH:+:$PYTHONPATH}" ;;
esac
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export PATH="$_ei_venv/bin:$PATH"
unset _ei_root _ei_venv _ei_msgs _ei_probe _ei_pyver _ei_pkg _ei_site
# Keep DDS discovery on this machine unless told otherwise (set to SUBNET on the robot/laptop graph).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
