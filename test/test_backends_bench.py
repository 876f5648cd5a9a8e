"""`edge-inference bench` writes the JSON other tools read (numbers themselves come from `make bench`)."""
from __future__ import annotations

import json

import numpy as np
from onnx_models import tiny_fsq_model

from edge_inference.cli import main as cli_main
from edge_inference.deploy.quantization import quantize_onnx_static


def main(argv):
    return cli_main(["bench", *argv])


def test_bench_json_has_percentiles_sizes_and_ratios(tmp_path):
    ckpt = tiny_fsq_model(tmp_path / "fsq")
    calib = np.random.default_rng(0).standard_normal((8, 9, 2, 100)).astype(np.float32)
    quantize_onnx_static(ckpt / "model.onnx", ckpt / "model.int8.onnx", {"imu": calib})
    out = tmp_path / "bench.json"
    rc = main(["--json", str(out), "--fsq-model", str(ckpt), "--backends", "onnxruntime,onnxruntime-int8,hailo",
               "--runs", "200", "--warmup", "5", "--threads", "1"])
    assert rc == 0
    report = json.loads(out.read_text())
    for backend in ("onnxruntime", "onnxruntime-int8"):
        r = report["models"]["fsq"][backend]
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] and r["runs"] == 200
        assert r["size_bytes"] == (ckpt / r["model_file"].split("/")[-1]).stat().st_size
        assert r["peak_rss_mb"] > 0 and r["torch_imported"] is False
    assert "hailo" in report["models"]["fsq"]["hailo"]["skipped"]  # no HEF here: reported, not faked
    assert "skipped" in report["models"]["act"]["onnxruntime"]
    sizes = {b: report["models"]["fsq"][b]["size_bytes"] for b in ("onnxruntime", "onnxruntime-int8")}
    assert report["ratios"]["fsq"]["int8_onnx_size_fraction"] == sizes["onnxruntime-int8"] / sizes["onnxruntime"]
    assert report["config"]["threads"] == 1 and (tmp_path / "bench.md").read_text().startswith("Benchmark")
