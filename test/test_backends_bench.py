"""`edge-inference bench` writes the JSON other tools read (numbers themselves come from `make bench`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import needs_torch
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


DONKEY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "donkey" / "data"


@needs_torch
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not DONKEY.is_dir(), reason="needs the Donkey tubs in ../shared/data/donkey")
def test_act_levers_quantizes_gates_and_times_each_recipe(tmp_path):
    """`bench --act-levers`: every lever gets a gate report and timings from the same interleaved run."""
    from edge_inference.models.act import ACTConfig, ACTInferenceModule
    from edge_inference.models.act.checkpoint import save_act

    config = ACTConfig(image_size=(48, 64), chunk_size=4, n_action_steps=4, dim_model=32, n_heads=4,
                       dim_feedforward=64, n_encoder_layers=1, n_decoder_layers=1, use_vae=False)
    stats = {config.image_feature: {"mean": np.array([0.4, 0.4, 0.4]), "std": np.array([0.25, 0.25, 0.25])},
             "observation.state": {"mean": np.array([0.0, 0.3]), "std": np.array([0.5, 0.1])},
             "action": {"mean": np.array([0.0, 0.3]), "std": np.array([0.5, 0.1])}}
    model = tmp_path / "act"
    save_act(ACTInferenceModule(config, stats).eval(), config, stats, model)
    out = tmp_path / "levers.json"
    assert main(["--act-levers", "--act-model", str(model), "--act-data", f"donkey:{DONKEY}",
                 "--levers", "legacy,round1,round1+spin-in-run,default", "--lever-dir", str(tmp_path / "levers"),
                 "--lever-calibration", "16",
                 "--lever-eval", "8", "--lever-references", "torch", "--runs", "200", "--warmup", "2",
                 "--runner-runs", "10", "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    levers = report["levers"]
    assert set(levers) == {"legacy", "round1", "round1+spin-in-run", "default"} and "p50_ms" in report["reference"]["torch"]
    for lever in report["levers"].values():
        assert lever["gate"]["evaluation_samples"] == 8 and "nmae" in lever["gate"]["act"]
        assert lever["p50_ms"] > 0 and lever["speedup_vs_torch_p50"] > 0 and lever["size_bytes"] > 0
    assert levers["default"]["recipe"]["float_output_op_types"] == ["Gemm"]
    assert levers["default"]["recipe"]["stem_space_to_depth"] and not levers["round1"]["recipe"]["stem_space_to_depth"]
    # a session lever reuses its recipe's int8 file and is timed with its own session settings
    assert levers["round1+spin-in-run"]["model_file"] == levers["round1"]["model_file"]
    assert levers["round1"]["tuning"] == {"spin_in_run": False, "skip_layer_norm_fusion": True}
    assert levers["round1+spin-in-run"]["tuning"] == {"spin_in_run": True, "skip_layer_norm_fusion": True}
    assert levers["default"]["tuning"] == {"spin_in_run": True, "skip_layer_norm_fusion": False}
    assert all(lever["timed_with"] == lever["tuning"] for lever in levers.values())
    assert "| default |" in out.with_suffix(".md").read_text()


def test_worker_peak_rss_is_its_own_not_the_drivers(tmp_path):
    """A driver that grew before starting its workers (quantizing in-process) must not lend them its peak RSS."""
    from types import SimpleNamespace

    from edge_inference.evaluation.model_bench import bench_model, peak_rss_mb

    ckpt = tiny_fsq_model(tmp_path / "fsq")
    ballast = np.ones(800 * 2**20, np.uint8)  # 800 MB resident in the driver when the worker forks
    assert peak_rss_mb() > 800
    args = SimpleNamespace(threads=1, warmup=2, cpus="", runs=20, runner_runs=10)
    result = bench_model(ckpt, ["onnxruntime"], args)["onnxruntime"]
    del ballast
    assert result["runs"] == 20
    assert 0 < result["peak_rss_mb"] < 500, result["peak_rss_mb"]


@needs_torch
def test_car_act_is_the_same_model_on_every_machine(tmp_path):
    """The int8 gate of `bench --act-car` depends on the weights: the random car ACT is seeded."""
    import hashlib

    import torch

    from edge_inference.evaluation.model_bench import make_car_act

    digests = []
    for run in range(2):
        torch.manual_seed(1000 + run)  # whatever the caller's RNG state
        out = make_car_act(tmp_path / f"car{run}", "none:")
        digests.append(hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_act_levers_by_default_skip_the_histogram_calibrators():
    """Entropy/Percentile hold every activation of every frame (OOM at 200 car-ACT frames): only when named."""
    from edge_inference.evaluation.quant_levers import default_lever_names, levers

    names = default_lever_names()
    assert {"legacy", "round1", "default"} <= set(names)
    assert {"default+entropy", "default+percentile"} <= set(levers()) - set(names)
    assert all(levers()[n][1].calibrate_method == "MinMax" for n in names)
