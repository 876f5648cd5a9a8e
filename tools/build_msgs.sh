#!/usr/bin/env bash
# Build edge_inference_msgs with rosidl from the ROS 2 PyPI wheels in the venv.
# On a real ROS 2 install use `colcon build` instead (see README).
# Usage: tools/build_msgs.sh VENV_DIR INSTALL_DIR
set -euo pipefail
venv=$(cd "$1" && pwd)
mkdir -p "$2"; install=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"
build="$install/../build_msgs"
mkdir -p "$build"

# The message wheels' exported CMake targets name the wheel builder's Python and
# numpy include dirs; point them at this venv's real ones (idempotent).
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
grep -rlE '/opt/python/cp311-cp311[^;"]*' "$venv/share" --include='*.cmake' 2>/dev/null | while read -r f; do
  sed -i -E \
    -e "s#/opt/python/cp311-cp311/include/python3\.11#${pyinc}#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/(_core|core)/include#${npinc}#g" \
    "$f"
done || true

export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
cmake -S "$here/edge_inference_msgs" -B "$build" \
  -DPython3_EXECUTABLE="$py" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >"$build/configure.log" 2>&1 \
  || { tail -40 "$build/configure.log"; exit 1; }
cmake --build "$build" -j2 >"$build/build.log" 2>&1 || { tail -40 "$build/build.log"; exit 1; }
cmake --install "$build" --prefix "$install" >"$build/install.log" 2>&1 || { tail -20 "$build/install.log"; exit 1; }
echo "edge_inference_msgs installed in $install"
