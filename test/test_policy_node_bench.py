"""`bench --pipeline` writes the promised JSON and its parts add up (no speed thresholds: those live in bench JSON)."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest


@pytest.mark.timeout(90)
def test_pipeline_bench_writes_json_whose_parts_add_up(ros_context, tmp_path):
    from edge_inference.ros import pipeline_bench as bench_pipeline

    parser = argparse.ArgumentParser()
    parser.add_argument("--json")  # as if the bench parser already had it: must not be added twice
    bench_pipeline.add_arguments(parser)
    out = tmp_path / "pipeline.json"
    args = parser.parse_args(["--json", str(out), "--width", "160", "--height", "90", "--frames", "40",
                              "--warmup", "5", "--rate", "60"])
    assert bench_pipeline.run(args) == 0
    result = json.loads(out.read_text())
    p = result["pipeline"]
    for key in ("overhead_ms", "image_to_chunk_ms", "model_ms", "dds_transport_ms"):
        assert {"p50", "p95"} <= set(p[key]) and p[key]["p50"] <= p[key]["p95"]
    assert p["chunks"] >= 40
    assert set(p["stages"]) == {"handoff_ms", "convert_ms", "preprocess_ms", "chunk_msg_ms", "publish_ms"}
    stage_sum = sum(s["mean"] for s in p["stages"].values())
    np.testing.assert_allclose(stage_sum, p["overhead_ms"]["mean"], rtol=1e-6)
    parts = sum(p[k]["mean"] for k in ("model_ms", "overhead_ms", "queued_ms", "dds_transport_ms"))
    np.testing.assert_allclose(parts, p["image_to_chunk_ms"]["mean"], rtol=1e-6)
    assert p["model_ms"]["p95"] < 1.0  # the null model really costs nothing
    assert result["config"]["model"] == "null" and result["config"]["width"] == 160


def test_null_backend_satisfies_the_real_policy_runner():
    from edge_inference.backends.runners import PolicyRunner
    from edge_inference.ros.pipeline_bench import NullActBackend, TimedBackend

    timed = TimedBackend(NullActBackend(64, 36, chunk_size=8))
    runner = PolicyRunner(timed)
    chunk = runner.predict(np.zeros((72, 128, 3), np.uint8), np.zeros(2, np.float32))
    assert chunk.shape == (8, 2) and len(timed.run_ms) == 1
