"""The learned yardstick policy: training pairs from a bag, ONNX export, scored by `eval` via the runner."""
from __future__ import annotations

import json

import numpy as np
import pytest
from model_fixtures import NO_TORCH
from test_eval import FRAME_NS, N, steering, throttle, write_eval_bag  # sibling test module

from edge_inference.cli import main as cli_main
from edge_inference.evaluation.baseline_policy import CHUNK, IMAGE_SIZE, load_training_data


def test_training_pairs_are_frames_with_previous_command_as_state(tmp_path):
    bag = tmp_path / "drive"
    write_eval_bag(bag, "mcap")
    data = load_training_data(bag)
    assert data["images"].shape == (N, *IMAGE_SIZE, 3) and data["images"].dtype == np.uint8
    i = np.arange(N)
    np.testing.assert_allclose(data["actions"][:, 0], steering(i), atol=1e-6)
    np.testing.assert_allclose(data["states"][1:, 1], throttle(i[:-1]), atol=1e-6)  # previous command
    assert data["states"][0].tolist() == [0.0, 0.0]
    assert data["episode_index"].tolist() == [0] * 54 + [1] * 6  # one drive: its last 10% is held out
    assert data["fps"] == pytest.approx(1e9 / FRAME_NS)


def test_trained_policy_is_scored_through_the_onnx_runner(tmp_path):
    pytest.importorskip("torch", reason=NO_TORCH)
    from edge_inference.evaluation.baseline_policy import main as train_main

    bag = tmp_path / "drive"
    write_eval_bag(bag, "mcap")
    model = tmp_path / "model"
    assert train_main(["--train-bag", str(bag), "--out", str(model), "--epochs", "1", "--threads", "1"]) == 0
    card = json.loads((model / "training.json").read_text())
    assert card["frames"] == N and card["chunk_size"] == CHUNK and card["architecture"] == "sim_cnn"
    out = tmp_path / "report"
    assert cli_main(["eval", "--bag", str(bag), "--model", str(model), "--backend", "onnxruntime",
                     "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    policy = metrics["policy"]
    assert policy["scored_samples"] == N and policy["dt_s"] == pytest.approx(FRAME_NS / 1e9)
    assert metrics["run"]["model_hash"] and metrics["run"]["backend"] == "onnxruntime"
    assert 0 <= policy["per_dimension"]["steering"]["mae"] <= 2.0
