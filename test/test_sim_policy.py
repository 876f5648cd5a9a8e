"""The demo's driving policy: the checked-in int8/fp32 models drive the sim, and train-sim-policy works."""
from __future__ import annotations

import json

import numpy as np
import pytest
from model_fixtures import NO_TORCH

from edge_inference.sim.demo_models import CHECKED_IN, find_model

SHIPPED = CHECKED_IN / "policy_cnn"


@pytest.mark.parametrize("backend", ["onnxruntime-int8", "onnxruntime"])
def test_checked_in_policy_drives_a_clean_lap(backend, tmp_path):
    from edge_inference.cli import main
    out = tmp_path / "score.json"
    rc = main(["drive-sim", "--mode", "direct", "--model", str(SHIPPED), "--backend", backend,
               "--laps", "1", "--track-shape", "bean", "--json", str(out)])
    score = json.loads(out.read_text())
    assert rc == 0, score
    assert score["laps_completed"] == 1 and score["off_track_events"] == 0
    assert score["max_cte_m"] < 0.2


def test_checked_in_models_are_complete_and_small():
    for kind in ("policy_cnn", "fsq"):
        d = find_model(CHECKED_IN / "missing-cache", kind)
        assert d == CHECKED_IN / kind
        total = sum(f.stat().st_size for f in d.iterdir())
        assert total < 3_000_000, f"{kind}: {total} bytes checked in"
    from edge_inference.backends.runners import create_policy_runner
    runner = create_policy_runner(SHIPPED, "onnxruntime-int8")
    try:
        assert (runner.chunk_size, runner.action_dim) == (16, 2)
        chunk = runner.predict(np.zeros((180, 320, 3), np.uint8), np.zeros(2, np.float32))
        assert chunk.shape == (16, 2) and np.all(np.abs(chunk) <= 1.0)
    finally:
        runner.close()


def test_train_sim_policy_exports_a_runnable_model(tmp_path):
    pytest.importorskip("torch", reason=NO_TORCH)
    from edge_inference.backends.runners import create_policy_runner
    from edge_inference.cli import main
    from edge_inference.sim.demonstrations import DemoConfig, generate_demos
    demos = generate_demos(DemoConfig(episodes=2, seconds=2.0, image_size=(36, 64)))
    np.savez(tmp_path / "demos.npz", **demos)
    out = tmp_path / "policy"
    assert main(["train-sim-policy", "--data", str(tmp_path / "demos.npz"), "--out", str(out), "--epochs", "1",
                 "--image-size", "36", "64", "--chunk-size", "8", "--threads", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["onnx_max_abs_diff_real"] < 1e-4
    runner = create_policy_runner(out, "onnxruntime")
    try:
        assert runner.chunk_size == 8 and runner.image_height == 36
        assert runner.predict(np.zeros((180, 320, 3), np.uint8), np.zeros(2, np.float32)).shape == (8, 2)
    finally:
        runner.close()
    assert main(["train-sim-policy", "--data", str(tmp_path / "nope.npz"), "--out", str(out)]) == 2


def test_int8_policy_laps_through_the_real_nodes(built_msgs):
    """The done-criterion of `make demo`: camera(sim) -> policy_node(int8) -> bridge -> pty -> board -> dynamics."""
    from edge_inference.sim.closed_loop import drive_graph
    score = drive_graph(str(SHIPPED), "onnxruntime-int8", laps=1, timeout_s=45.0, quiet=True)
    assert score["laps_completed"] == 1 and score["off_track_events"] == 0, score
    assert score["control_rate_hz"] > 20.0
    assert score["e2e_latency_ms"]["p50"] is not None and score["model_latency_ms"]["p50"] < 50.0


def test_demo_builds_a_lerobot_act_that_the_runners_load(tmp_path):
    """`make demo` on a fresh clone builds its ACT (gen-demos -> train-act -> export -> quantize)."""
    pytest.importorskip("torch", reason="building the demo's ACT needs torch (dev profile)")
    from edge_inference.backends.runners import create_policy_runner
    from edge_inference.sim.demo_models import ACT_IMAGE, build_act, find_model

    act = build_act(tmp_path, max_steps=15, episodes=1)  # fewest steps whose int8 model passes the gate
    assert find_model(tmp_path, "act") == act
    config = json.loads((act / "config.json").read_text())
    assert config["type"] == "act" and config["vision_backbone"] == "resnet18"  # LeRobot's config.json
    assert (act / "model.safetensors").is_file()
    for backend in ("onnxruntime-int8", "onnxruntime"):
        runner = create_policy_runner(act, backend)
        try:
            assert (runner.image_height, runner.image_width) == tuple(int(v) for v in ACT_IMAGE)
            chunk = runner.predict(np.zeros((180, 320, 3), np.uint8), np.zeros(2, np.float32))
            assert chunk.shape == (16, 2) and np.all(np.isfinite(chunk))
        finally:
            runner.close()
