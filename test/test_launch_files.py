"""The launch files at description level, without launch (not on PyPI): their arguments reach
``edge_inference.ros.graph``, the preflight runs first, and every executable they start is found
after ``colcon build``. The launch_pytest run of rover.launch.py is test_launch_rover.py (ROS installs)."""
import ast
import inspect
from pathlib import Path

LAUNCH_DIR = Path(__file__).resolve().parent.parent / "launch"


def launch_args(path: Path) -> dict[str, tuple]:
    """The ARGS table of a launch file, read without importing launch."""
    tree = ast.parse(path.read_text())
    node = next(n.value for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "ARGS")
    text = ast.unparse(node).replace("DEFAULT_ENCLAVE_ROOT", "'/edge_inference'").replace("BACKENDS", "('cpu', 'npu')")
    return ast.literal_eval(text)


def test_every_rover_launch_argument_reaches_the_description():
    from edge_inference.ros.graph import describe
    path = LAUNCH_DIR / "rover.launch.py"
    args = launch_args(path)
    launch_only = {"record", "security", "keystore", "enclave_root"}
    described = set(inspect.signature(describe).parameters)
    assert set(args) - launch_only <= described, set(args) - launch_only - described
    assert {"policy_model", "behavior_model", "namespace", "camera_topic", "config"} <= set(args)
    assert args["backend"][2] == ("cpu", "npu") and args["security"][2] == ("true", "false")
    source = path.read_text()
    assert source.index("preflight(specs)") < source.index("Node(package=PACKAGE")
    assert 'ExecutableInPackage("edge-inference", PACKAGE)' in source
    assert 'cmd=["edge-inference"' not in source  # not on PATH after colcon build: lib/edge_inference/
    assert "ros_arguments=s.ros_arguments or None" in source and "namespace=s.namespace" in source


def test_monitor_starts_rqt_after_discovery():
    """rqt_plot drops a restored plot whose topic is not in the graph yet (issue 15): rqt waits rqt_delay."""
    path = LAUNCH_DIR / "monitor.launch.py"
    args = launch_args(path)
    assert float(args["rqt_delay"][0]) >= 3.0
    tree = ast.parse(path.read_text())
    timers = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "TimerAction"]
    assert len(timers) == 1
    inner = [n for n in ast.walk(timers[0]) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"]
    assert [kw.value.value for n in inner for kw in n.keywords if kw.arg == "package"] == ["rqt_gui"]
    assert "rqt_delay" in ast.unparse(timers[0])
