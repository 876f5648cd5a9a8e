"""The real (LeRobot-compatible) ACT through export, quantize, the Hailo split and every runner backend."""
from __future__ import annotations

import numpy as np
import pytest
from model_fixtures import needs_torch

from edge_inference.backends.runners import create_policy_runner

pytestmark = needs_torch


@pytest.fixture(scope="module")
def act_checkpoint(tmp_path_factory):
    from edge_inference.models.act import ACTConfig, ACTInferenceModule
    from edge_inference.models.act.checkpoint import save_act

    config = ACTConfig(image_size=(64, 96), chunk_size=4, n_action_steps=4, dim_model=32, n_heads=4,
                       dim_feedforward=64, n_encoder_layers=1, n_decoder_layers=1, use_vae=False, fps=20.0)
    stats = {config.image_feature: {"mean": np.array([0.4, 0.4, 0.4]), "std": np.array([0.25, 0.25, 0.25])},
             "observation.state": {"mean": np.array([0.0, 0.3]), "std": np.array([0.5, 0.1])},
             "action": {"mean": np.array([0.0, 0.3]), "std": np.array([0.5, 0.1])}}
    out = tmp_path_factory.mktemp("act") / "ckpt"
    save_act(ACTInferenceModule(config, stats).eval(), config, stats, out)
    return out


def _tool(argv):
    from edge_inference.cli import main
    return main(argv)


def test_export_quantize_and_runners_agree_on_the_real_act(act_checkpoint):
    from edge_inference.deploy.onnx_export import read_onnx_metadata

    assert _tool(["export", "--model", str(act_checkpoint), "--split"]) == 0
    meta = read_onnx_metadata(act_checkpoint / "model.onnx")
    assert meta["chunk_size"] == 4 and meta["image_size"] == [64, 96] and meta["dt"] == pytest.approx(0.05)
    assert (act_checkpoint / "npu.onnx").is_file() and (act_checkpoint / "host.onnx").is_file()
    rng = np.random.default_rng(0)
    np.savez(act_checkpoint / "calibration.npz", image=rng.random((16, 3, 64, 96), dtype=np.float32),
             state=rng.uniform(-1, 1, (16, 2)).astype(np.float32))
    assert _tool(["quantize", "--model", str(act_checkpoint), "--samples",
                            str(act_checkpoint / "calibration.npz"), "--num-calibration", "8"]) == 0

    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    state = np.array([0.1, 0.3], np.float32)
    chunks = {b: create_policy_runner(act_checkpoint, b).predict(image, state)
              for b in ("torch", "torch-int8", "onnxruntime", "onnxruntime-int8")}
    assert chunks["torch"].shape == (4, 2)
    np.testing.assert_allclose(chunks["onnxruntime"], chunks["torch"], atol=1e-4)
    for int8 in ("onnxruntime-int8", "torch-int8"):  # int8 stays close to fp32 (actions std 0.5 / 0.1)
        assert np.abs(chunks[int8] - chunks["torch"]).max() < 0.1, int8
    from edge_inference.backends import create_backend

    assert create_backend("torch-int8", act_checkpoint).static_modules == ["model.backbone"]
    runner = create_policy_runner(act_checkpoint, "torch")
    assert runner.action_names == ["steering", "throttle"] and runner.dt == pytest.approx(0.05)


def _optimized_graph(path, tmp_path):
    """The graph ONNX Runtime actually runs (after its QDQ fusions and layout transforms)."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / f"{path.stem}.optimized.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return onnx.load(opts.optimized_model_filepath).graph


def _round_trips(graph) -> dict[str, int]:
    """DequantizeLinear nodes of activations by what they feed: requantize (DQ -> Q) or a float op."""
    import collections

    consumers = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node.op_type)
    weights = {init.name for init in graph.initializer}
    out = collections.Counter()
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] not in weights:
            for op in consumers[node.output[0]]:
                out["requantize" if op == "QuantizeLinear" else op] += 1
    return out


def test_act_quantize_default_removes_float_round_trips(act_checkpoint, tmp_path):
    """Issue 17: the ACT default quantizes the ResNet's Relu/Add/MaxPool (a Conv's QuantizeLinear takes
    the Relu's range, so ORT runs conv+relu as one QLinearConv instead of QLinearConv -> DQ -> Q on the
    whole feature map) and leaves Gemm outputs float (QGemm with a float output feeds LayerNorm and
    attention directly instead of QGemm -> DQ)."""
    from edge_inference.deploy.onnx_export import read_onnx_metadata
    from edge_inference.deploy.quantization import (
        ACT_RECIPE,
        FSQ_RECIPE,
        LEGACY_RECIPE,
        default_recipe,
        quantize_onnx_static,
    )

    if not (act_checkpoint / "model.onnx").is_file():
        assert _tool(["export", "--model", str(act_checkpoint)]) == 0
    rng = np.random.default_rng(1)
    calibration = {"image": rng.random((8, 3, 64, 96), dtype=np.float32),
                   "state": rng.uniform(-1, 1, (8, 2)).astype(np.float32)}
    default = quantize_onnx_static(act_checkpoint / "model.onnx", tmp_path / "default.onnx", calibration)
    legacy = quantize_onnx_static(act_checkpoint / "model.onnx", tmp_path / "legacy.onnx", calibration,
                                  recipe=LEGACY_RECIPE)
    assert default_recipe("act") == ACT_RECIPE and default_recipe("fsq_classifier") == FSQ_RECIPE
    assert read_onnx_metadata(default)["quantization"]["recipe"]["backbone_op_types"] == ["Relu", "Add", "MaxPool"]
    new, old = _round_trips(_optimized_graph(default, tmp_path)), _round_trips(_optimized_graph(legacy, tmp_path))
    assert old["requantize"] >= 8 and new["requantize"] < old["requantize"] // 4, (new, old)  # ResNet18: 9 conv+relu
    assert old["SkipLayerNormalization"] > 0 and new["SkipLayerNormalization"] == 0, (new, old)
    assert sum(new.values()) < sum(old.values()) // 2, (new, old)
