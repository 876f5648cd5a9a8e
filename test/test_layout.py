"""The layout rule and lint: the core stays ROS-free, tests use library code, ruff is clean."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "edge_inference"
ROS_TOP_LEVEL = {"rclpy", "rosidl_runtime_py", "rosbag2_py", "launch", "launch_ros", "builtin_interfaces",
                 "cv_bridge", "tf2_ros", "message_filters"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def is_ros(module: str) -> bool:
    top = module.split(".")[0]
    return top in ROS_TOP_LEVEL or top.endswith("_msgs") or top.endswith("_srvs") or top.endswith("_interfaces")


def test_core_imports_no_ros():
    offenders = {f"{p.relative_to(ROOT)}: {m}" for p in (PKG / "core").rglob("*.py")
                 for m in imported_modules(p) if is_ros(m)}
    assert not offenders, "edge_inference/core must stay ROS-free:\n" + "\n".join(sorted(offenders))


def test_core_imports_only_core_of_the_package():
    """A core depends on cores only: not on the ROS shell, devices, commands or tooling."""
    offenders = {f"{p.relative_to(ROOT)}: {m}" for p in (PKG / "core").rglob("*.py") for m in imported_modules(p)
                 if m.startswith("edge_inference.") and not m.startswith("edge_inference.core")}
    assert not offenders, "\n".join(sorted(offenders))


def test_the_rule_catches_a_ros_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sensor_msgs.msg import Image\n    import rclpy.node\n")
    assert {m for m in imported_modules(bad) if is_ros(m)} >= {"sensor_msgs.msg", "rclpy.node"}
    assert not is_ros("numpy") and not is_ros("edge_inference.core.bag_io")


def test_only_the_cli_and_commands_import_commands():
    """Commands are thin: the library and the tests never import a command module."""
    offenders = {f"{p.relative_to(ROOT)}: {m}"
                 for p in list(PKG.rglob("*.py")) + list((ROOT / "test").rglob("*.py"))
                 if "commands" not in p.relative_to(PKG if p.is_relative_to(PKG) else ROOT).parts[:1]
                 and p != PKG / "cli.py"
                 for m in imported_modules(p) if m.startswith("edge_inference.commands")}
    assert not offenders, "\n".join(sorted(offenders))


def test_node_modules_live_in_the_ros_shell():
    nodes = sorted(p.stem for p in (PKG / "ros" / "nodes").glob("*_node.py"))
    assert {"camera_node", "policy_node", "behavior_node", "pwm_bridge_node"} <= set(nodes)
    assert not list(PKG.glob("*_node.py"))


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (requirements/dev.txt installs it)")
    result = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
