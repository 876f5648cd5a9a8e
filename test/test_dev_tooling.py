"""Dev tooling on whatever CPython the venv has (3.11 dev profile, 3.12 robot profile).

`scripts/env.sh` must put the interfaces built for *this* interpreter on the path, and the
checkout's `edge_inference_msgs/` source folder (no __init__.py: it imports as an empty
namespace package) must never pass for them. `scripts/fix_wheel_cmake_paths.sh` must map the
build-machine include dirs of the ROS wheels of any CPython version.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PYVER = "%d.%d" % sys.version_info[:2]


def _bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EI_VENV", "EI_MSGS")}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=clean | env, capture_output=True, text=True,
                          timeout=120)


def _built_msgs_prefix() -> Path:
    """The install prefix of the interfaces this session imports (``<prefix>/lib/pythonX.Y/site-packages``)."""
    from edge_inference_msgs.msg import VehicleCommand

    site = Path(sys.modules[VehicleCommand.__module__].__file__).resolve().parents[2]
    assert site.name == "site-packages" and site.parent.name == f"python{PYVER}", site
    return site.parents[2]


def test_env_sh_puts_the_interfaces_built_for_this_python_on_the_path(built_msgs, tmp_path):
    prefix = _built_msgs_prefix()
    probe = ("import os, edge_inference_msgs; from edge_inference_msgs.msg import VehicleCommand; "
             "print(os.environ['PYTHONPATH'].split(':')[0]); print(edge_inference_msgs.__file__)")
    result = _bash(f'source "{ROOT}/scripts/env.sh" && "{sys.executable}" -c "{probe}"', tmp_path,
                   EI_VENV=sys.prefix, EI_MSGS=str(prefix))
    assert result.returncode == 0, result.stderr
    first, package = result.stdout.split()
    assert first == str(prefix / "lib" / f"python{PYVER}" / "site-packages")
    assert Path(package).resolve().is_relative_to(prefix.resolve())
    assert "warning" not in result.stderr


def test_env_sh_warns_when_the_interfaces_are_not_built_for_this_python(tmp_path):
    result = _bash(f'source "{ROOT}/scripts/env.sh" && echo "$PYTHONPATH"', tmp_path,
                   EI_VENV=sys.prefix, EI_MSGS=str(tmp_path / "empty"))
    assert result.returncode == 0
    assert f"edge_inference_msgs is not built for python{PYVER}" in result.stderr
    assert result.stdout.split(":")[0].strip() == str(tmp_path / "empty" / "lib" / f"python{PYVER}" / "site-packages")


def test_msgs_check_is_not_fooled_by_the_source_folder():
    """With only the checkout on the path, `import edge_inference_msgs.msg` succeeds (namespace
    package); the conftest check must still report the interfaces as missing."""
    code = ("import sys; sys.path.insert(0, 'test'); import edge_inference_msgs.msg as m; "
            "from conftest import _msgs_available; print(type(m.__path__).__name__, _msgs_available())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["_NamespacePath", "False"]


def _fake_venv(tmp_path: Path, cmake_text: str) -> tuple[Path, Path]:
    """A venv whose bin/python is this interpreter, with one wheel-style exported CMake file."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    cmake = venv / "share" / "std_msgs" / "cmake" / "std_msgs__rosidl_generator_pyExport.cmake"
    cmake.parent.mkdir(parents=True)
    cmake.write_text(cmake_text)
    return venv, cmake


@pytest.mark.parametrize("tag", ["cp311-cp311", "cp312-cp312", "cp313-cp313"])
@pytest.mark.parametrize("numpy_dir", ["core", "_core"])
def test_wheel_cmake_paths_map_to_this_interpreter_whatever_the_wheel_version(tmp_path, tag, numpy_dir):
    v = f"3.{tag[3:5]}"
    text = (f'  INTERFACE_INCLUDE_DIRECTORIES "/opt/python/{tag}/include/python{v};'
            f'/opt/python/{tag}/lib/python{v}/site-packages/numpy/{numpy_dir}/include;${{_IMPORT_PREFIX}}/include"\n')
    venv, cmake = _fake_venv(tmp_path, text)
    for _ in range(2):  # idempotent
        result = subprocess.run([str(ROOT / "scripts" / "fix_wheel_cmake_paths.sh"), str(venv)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    fixed = cmake.read_text()
    assert "/opt/python" not in fixed
    assert fixed == (f'  INTERFACE_INCLUDE_DIRECTORIES "{sysconfig.get_paths()["include"]};{np.get_include()};'
                     '${_IMPORT_PREFIX}/include"\n')


def test_wheel_cmake_paths_it_cannot_map_stop_with_their_name(tmp_path):
    venv, _ = _fake_venv(tmp_path, 'set(_lib "/opt/python/cp312-cp312/lib/libpython3.12.so")\n')
    result = subprocess.run([str(ROOT / "scripts" / "fix_wheel_cmake_paths.sh"), str(venv)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "/opt/python/cp312-cp312/lib/libpython3.12.so" in result.stderr


def test_find_python_finds_this_version_and_never_installs_a_missing_one():
    found = subprocess.run([str(ROOT / "scripts" / "find_python.sh"), PYVER, sys.executable],
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and Path(found.stdout.strip()).name.startswith("python"), found.stderr
    missing = subprocess.run([str(ROOT / "scripts" / "find_python.sh"), "3.99"], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 1 and "no CPython 3.99 interpreter found" in missing.stderr
    assert "nothing was installed" in missing.stderr
