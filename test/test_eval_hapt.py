"""Real data, real model: a held-out HAPT user's recording streamed through the behavior core.

The FSQ classifier in models/fsq_hapt never saw user 21. The recording is written
as a rosbag2 (IMU + label segments) and scored by the same replay as any drive.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_inference.evaluation.hapt_bag import SAMPLE_NS, T0_NS, write_hapt_bag
from edge_inference.evaluation.replay import ReplayConfig, evaluate_bag

REPO = Path(__file__).resolve().parents[1]
HAPT = REPO.parent / "shared" / "data" / "hapt"
MODEL = REPO / "models" / "fsq_hapt"


@pytest.mark.skipif(not (HAPT / "RawData" / "labels.txt").is_file() or not (MODEL / "model.onnx").is_file(),
                    reason="needs ../shared/data/hapt and models/fsq_hapt")
def test_fsq_model_on_held_out_user_streamed_from_a_bag(tmp_path):
    from edge_inference.backends.runners import create_behavior_runner
    from edge_inference.core.imu_window import WindowConfig

    names = json.loads((MODEL / "config.json").read_text())["class_names"]
    bag = tmp_path / "hapt_user21"
    counts = write_hapt_bag(HAPT, 42, 21, bag, names, max_samples=8000)  # 160 s
    runner = create_behavior_runner(MODEL, "onnxruntime")
    config = ReplayConfig(window=WindowConfig(window_length=runner.window_length,
                                              sample_rate_hz=runner.sample_rate_hz, stride=25))
    metrics, result = evaluate_bag(str(bag), config, behavior=runner)
    runner.close()
    # Window labels by the one rule (window_labels.window_label), computed directly from HAPT's labels.txt.
    from edge_inference.datasets.hapt import read_activity_labels, recording_sample_labels
    from edge_inference.evaluation.window_labels import window_labels

    segments = np.loadtxt(HAPT / "RawData" / "labels.txt", dtype=np.int64, ndmin=2)
    segments = segments[(segments[:, 0] == 42) & (segments[:, 1] == 21)]
    per_sample = recording_sample_labels(segments, 8000, read_activity_labels(HAPT), names)
    ends = (np.asarray(result.window_ns) - T0_NS) // SAMPLE_NS  # 0-based index of each window's newest sample
    assert ends[0] == 99 and np.all(np.diff(ends) == 25)
    expected = window_labels(per_sample, ends, 100)
    assert result.y_true == expected.tolist()
    behavior = metrics["behavior"]
    assert behavior["labelled_windows"] == int((expected >= 0).sum()) > 100
    y_pred = np.asarray(result.y_pred)[expected >= 0]
    assert behavior["accuracy"] == pytest.approx((y_pred == expected[expected >= 0]).mean(), rel=1e-6)
    assert behavior["accuracy"] > 0.7  # chance is ~0.2; the model scores ~0.96 on clean windows
    assert 1 < behavior["fsq_codes"]["unique_codes"] <= 4800 and behavior["fsq_codes"]["codebook_size"] == 4800
    assert behavior["not_scored"]["transition"] == int((expected == -2).sum()) > 0
    assert counts["imu_samples"] == 8000 and metrics["bag"]["messages_read"] == 8000 + counts["label_changes"]


@pytest.mark.skipif(not (HAPT / "RawData" / "labels.txt").is_file() or not (MODEL / "model.int8.onnx").is_file(),
                    reason="needs ../shared/data/hapt and models/fsq_hapt with its int8 export")
def test_cli_compares_fp32_and_int8_side_by_side_on_one_bag(tmp_path):
    from edge_inference.cli import main

    bag = tmp_path / "bag"
    assert main(["import-hapt", str(HAPT), "--experiment", "40", "--user", "20", "--classes-from", str(MODEL),
                 "--out", str(bag)]) == 0
    out = tmp_path / "cmp"
    assert main(["eval", "--bag", str(bag), "--behavior-model", str(MODEL), "--behavior-backend", "onnxruntime",
                 "--behavior-backend", "onnxruntime-int8", "--out", str(out)]) == 0
    fp32 = json.loads((out / "fsq_hapt-onnxruntime" / "metrics.json").read_text())["behavior"]
    int8 = json.loads((out / "fsq_hapt-onnxruntime-int8" / "metrics.json").read_text())["behavior"]
    assert fp32["labelled_windows"] == int8["labelled_windows"] > 100
    assert abs(fp32["accuracy"] - int8["accuracy"]) < 0.03  # int8 keeps the accuracy on unseen data
    table = (out / "comparison.md").read_text()
    assert "| metric | fsq_hapt-onnxruntime | fsq_hapt-onnxruntime-int8 |" in table
    assert f"| behavior accuracy | {fp32['accuracy']:.3f} | {int8['accuracy']:.3f} |" in table
    same = next(line for line in table.splitlines() if line.startswith("| same behavior class as"))
    assert float(same.strip("|").split("|")[2]) >= 0.95  # int8 predicts the same class almost always
