#!/usr/bin/env bash
# The ROS 2 message wheels' exported CMake targets name the wheel builder's Python and
# numpy include dirs (/opt/python/cpXY-cpXY/...; numpy/core or numpy/_core); point them
# at the venv interpreter's real ones, whatever its version. Idempotent.
# Usage: scripts/fix_wheel_cmake_paths.sh VENV_DIR
set -euo pipefail
venv=$(cd "$1" && pwd)
py="$venv/bin/python"
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
builder='/opt/python/cp3[0-9]+-cp3[0-9]+'
grep -rlE "$builder" "$venv/share" --include='*.cmake' 2>/dev/null | while read -r f; do
  sed -i -E \
    -e "s#${builder}/include/python3\.[0-9]+#${pyinc}#g" \
    -e "s#${builder}/lib/python3\.[0-9]+/site-packages/numpy/(_core|core)/include#${npinc}#g" \
    "$f"
done || true
# Anything left would stop the interface build with "includes non-existent path": say which.
if left=$(grep -rhoE "${builder}[^;\" ]*" "$venv/share" --include='*.cmake' 2>/dev/null | sort -u) && [ -n "$left" ]; then
  echo "error: wheel CMake files still name build-machine paths this script does not map:" >&2
  echo "$left" | head -5 >&2
  exit 1
fi
