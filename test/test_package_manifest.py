"""The ament_python package as colcon/rosdep see it: package.xml declares what the code
imports, setup.py installs an executable per node and the launch/config/msg files."""
from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Python import name -> rosdep key, for imports that rosdep can install on the robot.
# (onnxruntime, safetensors, rosbags, mcap come from pip there: README "On the robot";
# torch/onnx are for training and export only.)
ROSDEP_KEYS = {"cv2": "python3-opencv", "serial": "python3-serial", "numpy": "python3-numpy",
               "yaml": "python3-yaml", "matplotlib": "python3-matplotlib", "rich": "python3-rich"}
PIP_ONLY = {"onnxruntime", "safetensors", "rosbags", "mcap", "mcap_ros2", "torch", "onnx", "hailo_platform",
            "hailo_sdk_client", "onnxscript"}


def _imported_top_level(paths) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_package_xml_is_format_3_ament_python_and_declares_what_the_code_imports():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "edge_inference"
    assert root.find("export/build_type").text == "ament_python"
    exec_deps = {e.text for e in root.iter("exec_depend")}
    run_deps = exec_deps | {e.text for e in root.iter("depend")}
    imports = _imported_top_level((ROOT / "edge_inference").rglob("*.py"))
    ros = {n for n in imports if n == "rclpy" or n == "cv_bridge" or n == "ament_index_python"
           or re.fullmatch(r"[a-z0-9_]+_(msgs|srvs)", n)}
    assert {"rclpy", "sensor_msgs", "edge_inference_msgs", "std_srvs", "diagnostic_msgs"} <= ros
    missing = sorted((ros - run_deps) | {ROSDEP_KEYS[n] for n in imports if n in ROSDEP_KEYS} - run_deps)
    assert not missing, f"imported by edge_inference/ but not an exec_depend in package.xml: {missing}"
    launch_imports = _imported_top_level((ROOT / "launch").glob("*.py"))
    assert launch_imports & {"launch", "launch_ros"} <= run_deps
    assert not (exec_deps & PIP_ONLY), "pip-only packages have no rosdep keys"


def test_setup_py_has_an_executable_per_node_and_installs_launch_config_and_msgs():
    setup = (ROOT / "setup.py").read_text()
    nodes = sorted(p.stem for p in (ROOT / "edge_inference" / "ros" / "nodes").glob("*_node.py")
                   if re.search(r"^def main\(", p.read_text(), re.M))
    assert len(nodes) >= 4
    listed = re.search(r"NODES = \[(.*?)\]", setup, re.S).group(1)
    assert sorted(re.findall(r'"(\w+)"', listed)) == nodes
    assert '"edge-inference = edge_inference.cli:main"' in setup
    for folder in ("launch", "config", "msg"):
        assert f'"/{folder}"' in setup, f"setup.py does not install {folder}/"
    # the root msg/ is the interface package's msg/ (one copy of each definition)
    assert (ROOT / "msg").resolve() == (ROOT / "edge_inference_msgs" / "msg").resolve()
    assert {p.name for p in (ROOT / "msg").glob("*.msg")} >= {
        "ActionChunk.msg", "BehaviorState.msg", "VehicleCommand.msg", "VehicleState.msg"}
    assert (ROOT / "resource" / "edge_inference").is_file()


def _launched_packages() -> set[str]:
    """Packages whose executables the launch files start: Node(package="...") literals."""
    found = set()
    for path in (ROOT / "launch").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Node":
                for kw in node.keywords:
                    if kw.arg == "package" and isinstance(kw.value, ast.Constant):
                        found.add(kw.value.value)
    return found


def test_everything_the_launch_files_start_or_load_is_an_exec_depend():
    """monitor.launch.py starts rviz2, rqt_gui and diagnostic_aggregator; their configs load plugins."""
    import json

    import yaml
    root = ET.parse(ROOT / "package.xml").getroot()
    run_deps = {e.text for e in root.iter("exec_depend")} | {e.text for e in root.iter("depend")}
    launched = _launched_packages()
    assert {"rviz2", "rqt_gui", "diagnostic_aggregator"} <= launched
    persp = json.loads((ROOT / "config" / "rqt" / "rover.perspective").read_text())["groups"]["pluginmanager"]
    plugins = eval(persp["keys"]["running-plugins"]["repr"])  # noqa: S307 - rqt stores Python reprs
    loaded = {name.split("/")[0] for name in plugins} | {"rqt_gui_py"}  # rqt_gui runs Python plugins through it
    rviz = yaml.safe_load((ROOT / "config" / "rviz" / "rover.rviz").read_text())["Visualization Manager"]
    loaded |= {d["Class"].split("/")[0] for d in rviz["Displays"]}
    missing = sorted((launched | loaded) - run_deps)
    assert not missing, f"started or loaded by launch/ but not an exec_depend in package.xml: {missing}"

