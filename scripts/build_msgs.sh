#!/usr/bin/env bash
# Build edge_inference_msgs with rosidl from the ROS 2 PyPI wheels in the venv.
# On a real ROS 2 install use `colcon build` instead (see README).
# Usage: scripts/build_msgs.sh VENV_DIR INSTALL_DIR
set -euo pipefail
venv=$(cd "$1" && pwd)
mkdir -p "$2"; install=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"
build="$install/../build_msgs"
mkdir -p "$build"

"$here/scripts/fix_wheel_cmake_paths.sh" "$venv"

export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
# edge_inference_msgs, and tf2_msgs (TFMessage only: the wheels have none; see third_party/tf2_msgs/README.md)
for src in "$here/edge_inference_msgs" "$here/third_party/tf2_msgs"; do
  pkg=$(basename "$src")
  b="$build"; [ "$pkg" = edge_inference_msgs ] || b="$build/../build_$pkg"
  mkdir -p "$b"
  cmake -S "$src" -B "$b" \
    -DPython3_EXECUTABLE="$py" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >"$b/configure.log" 2>&1 \
    || { tail -40 "$b/configure.log"; exit 1; }
  cmake --build "$b" -j2 >"$b/build.log" 2>&1 || { tail -40 "$b/build.log"; exit 1; }
  cmake --install "$b" --prefix "$install" >"$b/install.log" 2>&1 || { tail -20 "$b/install.log"; exit 1; }
  echo "$pkg installed in $install"
done
