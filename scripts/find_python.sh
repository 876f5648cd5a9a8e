#!/usr/bin/env bash
# Print the path of an existing CPython X.Y interpreter; never installs one.
# Usage: scripts/find_python.sh 3.12 [CANDIDATE]
# Tries CANDIDATE if given; else pythonX.Y on PATH, then the versions an installed pyenv already has.
set -uo pipefail
want=$1
cand=${2:-python$want}
probe() {  # the interpreter's real path if it runs and is CPython $want
  "$@" -c "import platform, sys; v = '%d.%d' % sys.version_info[:2]
assert v == '$want' and platform.python_implementation() == 'CPython', v
print(sys.executable)" 2>/dev/null
}
probe "$cand" && exit 0
tried="'$cand'"
if [ $# -lt 2 ] && command -v pyenv >/dev/null 2>&1; then
  tried="$tried and pyenv's versions"
  root=$(pyenv root 2>/dev/null)
  for v in $(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}(\.[0-9]+)?$" | sort -rV); do
    probe "$root/versions/$v/bin/python$want" && exit 0
  done
fi
echo "error: no CPython $want interpreter found (tried $tried)." >&2
echo "       Install Python $want, or name one: make test-robot ROBOT_PYTHON=/path/to/python$want;" >&2
echo "       nothing was installed." >&2
exit 1
