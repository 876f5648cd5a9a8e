"""torch -> ONNX export: static shapes, BatchNorm folded, Conv2d only, parity within 1e-4."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from model_fixtures import ACT_RUNTIME, HAS_TORCH, act_samples, needs_torch

from edge_inference.deploy.onnx_export import (
    ExportParityError,
    checked_parity,
    export_act_onnx,
    export_fsq_onnx,
    export_fsq_split,
    onnx_outputs,
    read_onnx_metadata,
)

if HAS_TORCH:
    from torch_models import tiny_act, tiny_fsq_checkpoint

pytestmark = needs_torch


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def _static_shapes(path) -> list[list[int]]:
    graph = onnx.load(str(path)).graph
    return [[d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in list(graph.input) + list(graph.output)]


def test_fsq_export_folds_batchnorm_uses_conv2d_and_matches_torch(tmp_path):
    ckpt = tiny_fsq_checkpoint(tmp_path / "fsq")
    real = np.random.default_rng(3).standard_normal((4, 9, 2, 100)).astype(np.float32)
    result = export_fsq_onnx(ckpt, tmp_path / "fsq" / "model.onnx", real_inputs=real)
    ops = _ops(result.path)
    assert "BatchNormalization" not in ops and "Conv" in ops
    convs = [n for n in onnx.load(str(result.path)).graph.initializer if n.name.endswith("weight") and len(n.dims) >= 3]
    assert convs and all(len(w.dims) == 4 for w in convs)  # Conv2d weights (O, I, kh, kw): no Conv1d
    assert all(None not in shape for shape in _static_shapes(result.path))
    assert result.max_abs_diff_random <= 1e-4 and result.max_abs_diff_real <= 1e-4
    meta = read_onnx_metadata(result.path)
    assert meta["model"] == "fsq_classifier" and meta["config"]["class_names"] == ["still", "walk", "turn"]


def test_fsq_hailo_split_recomposes_the_whole_model(tmp_path):
    ckpt = tiny_fsq_checkpoint(tmp_path / "fsq")
    export_fsq_onnx(ckpt, ckpt / "model.onnx")
    npu, host = export_fsq_split(ckpt, ckpt)
    assert "Round" not in _ops(npu) and "Round" in _ops(host)  # rounding stays on the host
    x = np.random.default_rng(0).standard_normal((1, 9, 2, 100)).astype(np.float32)
    whole = onnx_outputs(ckpt / "model.onnx", {"imu": x})
    split = onnx_outputs(host, {"latent": onnx_outputs(npu, {"imu": x})[0]})
    for a, b in zip(whole, split):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_act_export_folds_batchnorm_and_matches_torch_on_random_and_real_inputs(tmp_path):
    module = tiny_act()
    result = export_act_onnx(module, ACT_RUNTIME, tmp_path / "act.onnx", real_inputs=act_samples(3))
    assert "BatchNormalization" not in _ops(result.path)
    assert result.max_abs_diff <= 1e-4 and result.max_abs_diff_real is not None
    h, w = ACT_RUNTIME["image_size"]
    assert _static_shapes(result.path) == [[1, 3, h, w], [1, 2], [1, ACT_RUNTIME["chunk_size"], 2]]
    meta = read_onnx_metadata(result.path)
    assert meta["chunk_size"] == 8 and meta["action_names"] == ["steering", "throttle"]


def test_parity_check_fails_when_onnx_differs_from_torch(tmp_path):
    module = tiny_act()
    result = export_act_onnx(module, ACT_RUNTIME, tmp_path / "act.onnx")
    changed = tiny_act(seed=1)  # different weights: the ONNX no longer matches this module
    with pytest.raises(ExportParityError, match="max \\|onnx - torch\\|"):
        checked_parity(changed, result.path, [act_samples(1)], [], tolerance=1e-4)


def test_act_split_puts_the_backbone_on_the_npu_and_recomposes(tmp_path):
    from edge_inference.deploy.onnx_export import split_at_scope

    full = export_act_onnx(tiny_act(), ACT_RUNTIME, tmp_path / "model.onnx").path
    npu, host = split_at_scope(full, tmp_path)
    assert set(_ops(npu)) <= {"Conv", "Relu", "Sub", "Div", "Mul", "Add"}  # conv stack only
    assert "MatMul" in _ops(host) or "Gemm" in _ops(host)  # the attention/linears stay on the host
    meta = read_onnx_metadata(npu)
    assert meta["npu_inputs"] == {"image": [1, 3, 24, 32]} and meta["npu_outputs"] == ["features"]
    sample = act_samples(1, seed=4)
    (features,) = onnx_outputs(npu, {"image": sample["image"]})
    (actions,) = onnx_outputs(host, {"features": features, "state": sample["state"]})
    np.testing.assert_allclose(actions, onnx_outputs(full, sample)[0], atol=1e-5)
