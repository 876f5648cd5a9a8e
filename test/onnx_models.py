"""Small ONNX models for the robot-side tests, built with ``onnx.helper``: no torch.

They have the input/output contract and metadata `edge-inference export` writes, so the
runners, backends (ONNX Runtime, the Hailo split), quantization and the bench run on them
as on an exported model. Their weights are seeded numpy arrays; ``*_reference`` computes
the same network in numpy, an independent check of what a runner returns.

- ``tiny_fsq_model(dir)``: FSQ classifier, ``imu`` (1, 9, 2, 100) -> ``probs`` (1, N),
  ``fsq_levels`` (1, 5); node scope ``/encoder/`` ends in the ``latent`` (1, 5, 1, 1) conv,
  so ``split_at_scope(..., scope="encoder")`` cuts it where the FSQ Hailo split does.
- ``tiny_act_model(path)``: ACT, ``image`` (1, 3, H, W) in [0, 1] + ``state`` (1, S) raw ->
  ``actions`` (1, chunk, A) raw: a conv backbone (scope ``/backbone/``), one self-attention
  layer (activation x activation MatMuls, as in ACT), an MLP and an action head.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_inference.deploy.onnx_export import METADATA_KEY, OPSET, act_metadata, fsq_metadata
from edge_inference.models.fsq.configuration_fsq import FSQConfig

TINY_FSQ_CONV = [8, 8]


def _weights_hash(weights: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode() + np.ascontiguousarray(weights[name]).tobytes())
    return digest.hexdigest()


def _as_model_dtypes(weights: dict) -> dict[str, np.ndarray]:
    """float32 as in the graph (so the numpy reference sees the same numbers), int64 Reshape shapes (``*_shape``)."""
    return {k: np.asarray(v, np.int64 if k.endswith("_shape") else np.float32) for k, v in weights.items()}


def _conv2d(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], pads: tuple[int, int]) -> np.ndarray:
    """(1, C, H, W) * (O, C, kh, kw) -> (1, O, H', W'), zero padding (ph, pw) on both sides."""
    _, c, _, _ = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x[0], ((0, 0), (pads[0], pads[0]), (pads[1], pads[1])))
    oh, ow = (xp.shape[1] - kh) // stride[0] + 1, (xp.shape[2] - kw) // stride[1] + 1
    cols = np.empty((c, kh, kw, oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, i:i + stride[0] * oh:stride[0], j:j + stride[1] * ow:stride[1]]
    return np.einsum("ockl,cklhw->ohw", w.astype(np.float64), cols)[None]


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# --- FSQ -----------------------------------------------------------------------------------------

def tiny_fsq_config(class_names=("still", "walk", "turn")) -> FSQConfig:
    return FSQConfig(class_names=list(class_names), conv_channels=list(TINY_FSQ_CONV), head_hidden=16,
                     feature_mean=[[0.0, 0.0]] * 9, feature_std=[[1.0, 1.0]] * 9)


def _fsq_weights(config: FSQConfig, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    c1, c2 = config.conv_channels
    d, k = len(config.levels), config.kernel_size

    def he(*shape):  # fan-in scaled, so activations stay O(1) through the layers
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)

    levels = np.asarray(config.levels, np.float32)
    half_l = (levels - 1) * (1 - 1e-3) / 2
    offset = np.where(levels % 2 == 0, 0.5, 0.0).astype(np.float32)
    return _as_model_dtypes({"conv1.w": he(c1, config.in_channels, config.rows, k), "conv1.b": rng.normal(0, 0.1, c1),
            "conv2.w": he(c2, c1, 1, k), "conv2.b": rng.normal(0, 0.1, c2),
            "proj.w": 2 * he(d, c2, 1, 1), "proj.b": rng.normal(0, 0.3, d),
            "fsq.shift": np.tan(offset / half_l), "fsq.half_l": half_l, "fsq.offset": offset,
            "fsq.half_width": np.floor(levels / 2), "head1.w": he(config.head_hidden, d).T.copy(),
            "head1.b": rng.normal(0, 0.1, config.head_hidden),
            "head2.w": he(config.num_classes, config.head_hidden).T.copy(), "head2.b": np.zeros(config.num_classes)})


def tiny_fsq_model(model_dir: str | Path, class_names=("still", "walk", "turn"), seed: int = 0) -> Path:
    """A model dir with ``model.onnx`` (fp32 FSQ classifier with its export metadata)."""
    config = tiny_fsq_config(class_names)
    weights = _fsq_weights(config, seed)
    k, d = config.kernel_size, len(config.levels)
    nodes = [
        helper.make_node("Conv", ["imu", "conv1.w", "conv1.b"], ["c1"], "/encoder/conv1/Conv", pads=[0, k // 2, 0, k // 2]),
        helper.make_node("Relu", ["c1"], ["r1"], "/encoder/relu1/Relu"),
        helper.make_node("Conv", ["r1", "conv2.w", "conv2.b"], ["c2"], "/encoder/conv2/Conv", pads=[0, k // 2, 0, k // 2],
                         strides=[1, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], "/encoder/relu2/Relu"),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"], "/encoder/pool/GlobalAveragePool"),
        helper.make_node("Conv", ["pooled", "proj.w", "proj.b"], ["z4"], "/encoder/proj/Conv"),  # latent (1, D, 1, 1)
        helper.make_node("Flatten", ["z4"], ["z"], "/fsq/Flatten"),
        helper.make_node("Add", ["z", "fsq.shift"], ["zs"], "/fsq/Add"),
        helper.make_node("Tanh", ["zs"], ["t"], "/fsq/Tanh"),
        helper.make_node("Mul", ["t", "fsq.half_l"], ["tb"], "/fsq/Mul"),
        helper.make_node("Sub", ["tb", "fsq.offset"], ["bounded"], "/fsq/Sub"),
        helper.make_node("Round", ["bounded"], ["q"], "/fsq/Round"),
        helper.make_node("Div", ["q", "fsq.half_width"], ["zhat"], "/fsq/Div"),
        helper.make_node("Add", ["q", "fsq.half_width"], ["fsq_levels"], "/fsq/Add_1"),
        helper.make_node("Gemm", ["zhat", "head1.w", "head1.b"], ["h1"], "/head/fc1/Gemm"),
        helper.make_node("Relu", ["h1"], ["hr"], "/head/relu/Relu"),
        helper.make_node("Gemm", ["hr", "head2.w", "head2.b"], ["logits"], "/head/fc2/Gemm"),
        helper.make_node("Softmax", ["logits"], ["probs"], "/Softmax", axis=-1),
    ]
    inputs = [helper.make_tensor_value_info("imu", TensorProto.FLOAT, list(config.input_shape))]
    outputs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, config.num_classes]),
               helper.make_tensor_value_info("fsq_levels", TensorProto.FLOAT, [1, d])]
    model_dir = Path(model_dir)
    _save_graph(_graph(nodes, "tiny_fsq", inputs, outputs, weights), fsq_metadata(config, _weights_hash(weights)),
                model_dir / "model.onnx")
    return model_dir


def tiny_fsq_reference(x: np.ndarray, class_names=("still", "walk", "turn"), seed: int = 0):
    """numpy forward of ``tiny_fsq_model``: model input (1, C, H, W) -> (probs (1, N), levels (1, D))."""
    config = tiny_fsq_config(class_names)
    w = _fsq_weights(config, seed)
    k = config.kernel_size
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    h = relu(_conv2d(x, w["conv1.w"], (1, 1), (0, k // 2)) + w["conv1.b"][None, :, None, None])
    h = relu(_conv2d(h, w["conv2.w"], (1, 2), (0, k // 2)) + w["conv2.b"][None, :, None, None])
    z = np.einsum("dc,c->d", w["proj.w"][:, :, 0, 0], h[0].mean(axis=(1, 2))) + w["proj.b"]
    q = np.round(np.tanh(z + w["fsq.shift"]) * w["fsq.half_l"] - w["fsq.offset"])
    logits = relu((q / w["fsq.half_width"]) @ w["head1.w"] + w["head1.b"]) @ w["head2.w"] + w["head2.b"]
    return _softmax(logits)[None].astype(np.float32), (q + w["fsq.half_width"])[None].astype(np.float32)


# --- ACT -----------------------------------------------------------------------------------------

def _act_weights(runtime: dict, seed: int, dim: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    s, a, chunk = runtime["state_dim"], runtime["action_dim"], runtime["chunk_size"]

    def lin(n_in, n_out):
        return (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)

    std = np.asarray(runtime.get("action_std", [1.0] * a), np.float32)
    return _as_model_dtypes({"conv1.w": rng.standard_normal((8, 3, 3, 3)) * np.sqrt(2 / 27),
            "conv1.b": rng.normal(0, 0.1, 8), "conv2.w": (rng.standard_normal((dim, 8, 3, 3)) * np.sqrt(2 / 72)),
            "conv2.b": rng.normal(0, 0.1, dim), "state.w": lin(s, dim), "state.b": rng.normal(0, 0.1, dim),
            "q.w": lin(dim, dim), "k.w": lin(dim, dim), "v.w": lin(dim, dim), "scale": np.float32(dim ** -0.5),
            "ffn1.w": lin(dim, 2 * dim), "ffn1.b": rng.normal(0, 0.1, 2 * dim), "ffn2.w": lin(2 * dim, dim),
            "ffn2.b": rng.normal(0, 0.1, dim), "queries": rng.normal(0, 0.5, (chunk, dim)),
            "head.w": lin(dim, a), "head.b": rng.normal(0, 0.1, a),
            "action_std": std, "action_mean": np.linspace(0.0, 0.3, a).astype(np.float32),
            "tokens_shape": np.array([1, dim, -1]), "state_shape": np.array([1, 1, dim])})


def tiny_act_model(path: str | Path, runtime: dict, seed: int = 0) -> Path:
    """``model.onnx`` of a small ACT-contract policy with its export metadata (``act_metadata``)."""
    weights = _act_weights(runtime, seed)
    h, w = runtime["image_size"]
    mm = lambda a, b, out, name: helper.make_node("MatMul", [a, b], [out], name)  # noqa: E731
    add = lambda a, b, out, name: helper.make_node("Add", [a, b], [out], name)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["image", "conv1.w", "conv1.b"], ["c1"], "/model/backbone/conv1/Conv",
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "/model/backbone/relu1/Relu"),
        helper.make_node("Conv", ["r1", "conv2.w", "conv2.b"], ["c2"], "/model/backbone/conv2/Conv",
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["feature_map"], "/model/backbone/relu2/Relu"),  # (1, D, h, w)
        helper.make_node("Reshape", ["feature_map", "tokens_shape"], ["f3"], "/model/Reshape"),
        helper.make_node("Transpose", ["f3"], ["feat"], "/model/Transpose", perm=[0, 2, 1]),  # (1, hw, D)
        mm("state", "state.w", "sp", "/model/state_proj/MatMul"), add("sp", "state.b", "sb", "/model/state_proj/Add"),
        helper.make_node("Reshape", ["sb", "state_shape"], ["stok"], "/model/Reshape_1"),  # (1, 1, D)
        helper.make_node("Concat", ["stok", "feat"], ["tokens"], "/model/Concat", axis=1),  # (1, 1+hw, D)
        mm("tokens", "q.w", "q", "/model/q/MatMul"), mm("tokens", "k.w", "k", "/model/k/MatMul"),
        mm("tokens", "v.w", "v", "/model/v/MatMul"),
        helper.make_node("Transpose", ["k"], ["kt"], "/model/attn/Transpose", perm=[0, 2, 1]),
        mm("q", "kt", "qk", "/model/attn/MatMul"),  # activation x activation
        helper.make_node("Mul", ["qk", "scale"], ["qks"], "/model/attn/Mul"),
        helper.make_node("Softmax", ["qks"], ["attn"], "/model/attn/Softmax", axis=-1),
        mm("attn", "v", "av", "/model/attn/MatMul_1"),  # activation x activation
        add("tokens", "av", "hidden", "/model/attn/Add"),
        mm("hidden", "ffn1.w", "f1", "/model/ffn1/MatMul"), add("f1", "ffn1.b", "f1b", "/model/ffn1/Add"),
        helper.make_node("Relu", ["f1b"], ["f1r"], "/model/ffn/Relu"),
        mm("f1r", "ffn2.w", "f2", "/model/ffn2/MatMul"), add("f2", "ffn2.b", "f2b", "/model/ffn2/Add"),
        add("hidden", "f2b", "hidden2", "/model/ffn/Add"),
        helper.make_node("ReduceMean", ["hidden2"], ["memory"], "/model/ReduceMean", axes=[1], keepdims=1),
        add("queries", "memory", "dec", "/model/decoder/Add"),  # (1, chunk, D)
        mm("dec", "head.w", "an", "/model/action_head/MatMul"), add("an", "head.b", "anb", "/model/action_head/Add"),
        helper.make_node("Mul", ["anb", "action_std"], ["as"], "/model/unnormalize/Mul"),
        add("as", "action_mean", "actions", "/model/unnormalize/Add"),
    ]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w]),
              helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, runtime["state_dim"]])]
    outputs = [helper.make_tensor_value_info("actions", TensorProto.FLOAT,
                                             [1, runtime["chunk_size"], runtime["action_dim"]])]
    return _save_graph(_graph(nodes, "tiny_act", inputs, outputs, weights),
                       act_metadata(runtime, _weights_hash(weights)), path)


def _graph(nodes, name: str, inputs, outputs, weights: dict[str, np.ndarray]):
    return helper.make_graph(nodes, name, inputs, outputs,
                             [numpy_helper.from_array(v, k) for k, v in _as_model_dtypes(weights).items()])


def _save_graph(graph, metadata: dict, path: str | Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="test/onnx_models")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def tiny_act_reference(image: np.ndarray, state: np.ndarray, runtime: dict, seed: int = 0) -> np.ndarray:
    """numpy forward of ``tiny_act_model``: image (1, 3, H, W), state (1, S) -> actions (chunk, A)."""
    w = _act_weights(runtime, seed)
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    f = relu(_conv2d(image, w["conv1.w"], (2, 2), (1, 1)) + w["conv1.b"][None, :, None, None])
    f = relu(_conv2d(f, w["conv2.w"], (2, 2), (1, 1)) + w["conv2.b"][None, :, None, None])
    feat = f[0].reshape(f.shape[1], -1).T  # (hw, D)
    tokens = np.concatenate([(state @ w["state.w"] + w["state.b"]), feat], axis=0)  # (1 + hw, D)
    q, k, v = tokens @ w["q.w"], tokens @ w["k.w"], tokens @ w["v.w"]
    hidden = tokens + _softmax(q @ k.T * w["scale"]) @ v
    hidden = hidden + relu(hidden @ w["ffn1.w"] + w["ffn1.b"]) @ w["ffn2.w"] + w["ffn2.b"]
    dec = w["queries"] + hidden.mean(axis=0, keepdims=True)  # (chunk, D)
    return ((dec @ w["head.w"] + w["head.b"]) * w["action_std"] + w["action_mean"]).astype(np.float32)
