"""torch -> ONNX with static shapes, folded BatchNorm, embedded metadata, parity check.

Why ONNX Runtime's basic graph optimizer runs on the export: it folds Conv +
BatchNormalization and Conv + Mul/Add (LeRobot's FrozenBatchNorm2d exports as
Mul/Add) into the Conv weights, leaving standard ONNX ops that both ONNX Runtime and
the Hailo Dataflow Compiler take. The model's metadata (class names, chunk, dt, image
size, normalization, ...) is stored in the ONNX ``metadata_props`` under
``edge_inference`` so the .onnx file alone is enough to run it.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_inference.core.errors import CheckFailed, one_line
from edge_inference.core.files import InputFileError

METADATA_KEY = "edge_inference"
OPSET = 17
PARITY_TOLERANCE = 1e-4


class ExportParityError(CheckFailed, RuntimeError):
    """ONNX outputs differ from torch by more than the tolerance."""


@dataclass
class ExportResult:
    path: Path
    max_abs_diff_random: float
    max_abs_diff_real: float | None
    size_bytes: int
    extra_paths: list[Path] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max(self.max_abs_diff_random, self.max_abs_diff_real or 0.0)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ort_load_errors() -> tuple[type[BaseException], ...]:
    """What ONNX Runtime raises for a file it cannot load (its error types share no base class)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(getattr(state, n) for n in ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf",
                                               "NoSuchFile", "NotImplemented") if hasattr(state, n))


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The ``edge_inference`` metadata of an ONNX file (via onnxruntime: no onnx/torch needed)."""
    import onnxruntime as ort

    if not Path(path).is_file():
        raise InputFileError(f"ONNX model not found ({path})")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except ort_load_errors() as err:  # a damaged, empty or foreign file
        raise InputFileError(f"not a loadable ONNX model: {one_line(str(err), 200)} ({path})") from err
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise InputFileError(f"{path} has no '{METADATA_KEY}' metadata; export it with `edge-inference export`")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise InputFileError(f"{path}: '{METADATA_KEY}' metadata is not JSON ({err})") from err


def write_onnx_metadata(path: str | Path, metadata: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(model, str(path))


def fold_with_onnxruntime(src: Path, dst: Path) -> None:
    """Save ONNX Runtime's basic-level optimized graph (constant folding, Conv+BN/Mul/Add fusion)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])


def export_onnx(module, example_inputs: dict[str, np.ndarray], output_names: list[str], path: str | Path,
                metadata: dict[str, Any]) -> Path:
    """Export ``module(*inputs)`` with static shapes to ``path`` (BN folded, metadata embedded)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in example_inputs.values())
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        # The TorchScript exporter on purpose: the dynamo one needs onnxscript and keeps
        # graph shapes less predictable for the Hailo compiler. It warns it is deprecated.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, args, str(raw), input_names=list(example_inputs), output_names=output_names,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        fold_with_onnxruntime(raw, path)
    write_onnx_metadata(path, metadata)
    return path


def onnx_outputs(path: str | Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()})


def max_abs_diff(module, path: str | Path, input_sets: list[dict[str, np.ndarray]]) -> float:
    """Largest |onnx - torch| over all outputs of all input sets (each set: batch 1)."""
    import torch

    worst = 0.0
    with torch.no_grad():
        for inputs in input_sets:
            expected = module(*(torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values()))
            expected = expected if isinstance(expected, (tuple, list)) else (expected,)
            for want, got in zip(expected, onnx_outputs(path, inputs)):
                worst = max(worst, float(np.max(np.abs(want.numpy() - got))))
    return worst


def checked_parity(module, path: Path, random_sets, real_sets, tolerance: float) -> tuple[float, float | None]:
    """(random diff, real diff); raises ExportParityError above ``tolerance``."""
    random_diff = max_abs_diff(module, path, random_sets)
    real_diff = max_abs_diff(module, path, real_sets) if real_sets else None
    worst = max(random_diff, real_diff or 0.0)
    if worst > tolerance:
        raise ExportParityError(f"{path}: max |onnx - torch| = {worst:.3g} > {tolerance:g} "
                                f"(random {random_diff:.3g}, real {real_diff})")
    return random_diff, real_diff


def sample_sets(samples: dict[str, np.ndarray] | None, limit: int) -> list[dict[str, np.ndarray]]:
    """Split stacked samples {name: (N, ...)} into batch-1 input dicts."""
    if not samples:
        return []
    n = min(len(v) for v in samples.values())
    return [{k: np.asarray(v[i:i + 1], dtype=np.float32) for k, v in samples.items()} for i in range(min(n, limit))]


# --- FSQ -----------------------------------------------------------------------------------------

FSQ_INPUT = "imu"
FSQ_OUTPUTS = ["probs", "fsq_levels"]


def fsq_metadata(config, weights_hash: str) -> dict[str, Any]:
    return {"model": "fsq_classifier", "config": config.to_dict(), "inputs": {FSQ_INPUT: list(config.input_shape)},
            "outputs": FSQ_OUTPUTS, "source_sha256": weights_hash}


def export_fsq_onnx(checkpoint: str | Path, out: str | Path, real_inputs: np.ndarray | None = None,
                    tolerance: float = PARITY_TOLERANCE, n_random: int = 8) -> ExportResult:
    """FSQ checkpoint dir -> ONNX (1, C, H, W) -> (probs (1, N), fsq_levels (1, D)), parity-checked."""
    from edge_inference.models.fsq.checkpoint import WEIGHTS_NAME, load_fsq
    from edge_inference.models.fsq.modeling_fsq import FSQInferenceModule

    model, config = load_fsq(checkpoint)
    module = FSQInferenceModule(model).eval()
    rng = np.random.default_rng(0)
    example = {FSQ_INPUT: rng.standard_normal(config.input_shape).astype(np.float32)}
    path = export_onnx(module, example, FSQ_OUTPUTS, out,
                       fsq_metadata(config, file_sha256(Path(checkpoint) / WEIGHTS_NAME)))
    random_sets = [{FSQ_INPUT: rng.standard_normal(config.input_shape).astype(np.float32)} for _ in range(n_random)]
    real_sets = sample_sets({FSQ_INPUT: real_inputs} if real_inputs is not None else None, 64)
    _check_fsq_levels(module, path, random_sets + real_sets)
    random_diff, real_diff = checked_parity(module, path, random_sets, real_sets, tolerance)
    return ExportResult(path, random_diff, real_diff, path.stat().st_size)


FSQ_LATENT = "latent"


def export_fsq_split(checkpoint: str | Path, out_dir: str | Path, tolerance: float = PARITY_TOLERANCE) -> list[Path]:
    """Hailo split of an FSQ checkpoint: ``npu.onnx`` (imu -> latent) + ``host.onnx`` (latent -> outputs).

    The pair is checked against the whole torch model on random inputs.
    """
    import torch

    from edge_inference.models.fsq.checkpoint import WEIGHTS_NAME, load_fsq
    from edge_inference.models.fsq.modeling_fsq import FSQHostPart, FSQInferenceModule, FSQNpuPart

    model, config = load_fsq(checkpoint)
    out_dir = Path(out_dir)
    meta = fsq_metadata(config, file_sha256(Path(checkpoint) / WEIGHTS_NAME))
    rng = np.random.default_rng(1)
    x = rng.standard_normal(config.input_shape).astype(np.float32)
    latent_shape = (1, len(config.levels), 1, 1)
    # Both parts carry the whole model's metadata plus what the NPU computes.
    split = {"npu_inputs": {FSQ_INPUT: list(config.input_shape)}, "npu_outputs": [FSQ_LATENT]}
    npu = export_onnx(FSQNpuPart(model), {FSQ_INPUT: x}, [FSQ_LATENT], out_dir / "npu.onnx",
                      meta | split | {"part": "npu"})
    host = export_onnx(FSQHostPart(model), {FSQ_LATENT: np.zeros(latent_shape, np.float32)}, FSQ_OUTPUTS,
                       out_dir / "host.onnx", meta | split | {"part": "host"})
    whole = FSQInferenceModule(model).eval()
    with torch.no_grad():
        want = whole(torch.from_numpy(x))
    got = onnx_outputs(host, {FSQ_LATENT: onnx_outputs(npu, {FSQ_INPUT: x})[0]})
    diff = max(float(np.max(np.abs(w.numpy() - g))) for w, g in zip(want, got))
    if diff > tolerance:
        raise ExportParityError(f"FSQ split (npu + host) differs from torch by {diff:.3g} > {tolerance:g}")
    return [npu, host]


def _check_fsq_levels(module, path: Path, input_sets) -> None:
    """Rounding may flip at a .5 boundary; report it as parity failure only if it happens."""
    import torch

    with torch.no_grad():
        for inputs in input_sets:
            _, want = module(torch.from_numpy(inputs[FSQ_INPUT]))
            _, got = onnx_outputs(path, inputs)
            if not np.array_equal(want.numpy(), got):
                raise ExportParityError(f"{path}: FSQ code levels differ between ONNX and torch")


# --- ACT -----------------------------------------------------------------------------------------

ACT_INPUTS = ("image", "state")
ACT_OUTPUTS = ["actions"]


def act_metadata(runtime: dict[str, Any], weights_hash: str) -> dict[str, Any]:
    h, w = runtime["image_size"]
    return {"model": "act", **runtime, "inputs": {"image": [1, 3, h, w], "state": [1, runtime["state_dim"]]},
            "outputs": ACT_OUTPUTS, "source_sha256": weights_hash}


def export_act_onnx(module, runtime: dict[str, Any], out: str | Path, weights_hash: str = "",
                    real_inputs: dict[str, np.ndarray] | None = None, tolerance: float = PARITY_TOLERANCE,
                    n_random: int = 3) -> ExportResult:
    """ACT inference module (image (1,3,H,W) [0,1], state (1,S) raw) -> actions (1, chunk, A) raw."""
    h, w = runtime["image_size"]
    rng = np.random.default_rng(0)

    def random_inputs():
        return {"image": rng.random((1, 3, h, w), dtype=np.float32),
                "state": rng.standard_normal((1, runtime["state_dim"])).astype(np.float32)}

    path = export_onnx(module, random_inputs(), ACT_OUTPUTS, out, act_metadata(runtime, weights_hash))
    random_sets = [random_inputs() for _ in range(n_random)]
    real_sets = sample_sets(real_inputs, 8)
    random_diff, real_diff = checked_parity(module.eval(), path, random_sets, real_sets, tolerance)
    return ExportResult(path, random_diff, real_diff, path.stat().st_size)


def split_at_scope(full_onnx: str | Path, out_dir: str | Path, scope: str = "backbone",
                   npu_inputs: tuple[str, ...] = ("image",), boundary_name: str = "features",
                   tolerance: float = PARITY_TOLERANCE) -> list[Path]:
    """Cut an exported model after the last node of module ``scope`` (e.g. ACT's ResNet backbone).

    ``npu.onnx``: ``npu_inputs`` -> ``boundary_name`` (the part for Hailo-8);
    ``host.onnx``: ``boundary_name`` + the other inputs -> the model outputs (the transformer,
    for ONNX Runtime: transformers map badly onto Hailo-8). Node names carry the torch module
    scope (``/model/backbone/...``), so this works on any exported ACT without touching its code.
    The pair is checked against the whole ONNX model on random inputs.
    """
    import onnx
    from onnx.utils import Extractor

    full_onnx, out_dir = Path(full_onnx), Path(out_dir)
    model = onnx.load(str(full_onnx))
    metadata = json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    in_scope = [n for n in model.graph.node if f"/{scope}/" in n.name or n.name.startswith(f"{scope}/")]
    if not in_scope:
        raise ValueError(f"{full_onnx}: no nodes of module scope {scope!r} to split at")
    boundary = in_scope[-1].output[0]
    graph_inputs = [i.name for i in model.graph.input]
    host_inputs = [boundary] + [n for n in graph_inputs if n not in npu_inputs]
    outputs = [o.name for o in model.graph.output]
    extractor = Extractor(onnx.shape_inference.infer_shapes(model))
    npu_model = extractor.extract_model(list(npu_inputs), [boundary])
    host_model = extractor.extract_model(host_inputs, outputs)
    for part, graph in (("npu", npu_model.graph), ("host", host_model.graph)):
        for node in graph.node:  # a readable, stable name for the cut tensor
            node.input[:] = [boundary_name if t == boundary else t for t in node.input]
            node.output[:] = [boundary_name if t == boundary else t for t in node.output]
        for value in list(graph.input) + list(graph.output):
            if value.name == boundary:
                value.name = boundary_name
    boundary_shape = [d.dim_value for d in npu_model.graph.output[0].type.tensor_type.shape.dim]
    split = {"npu_inputs": {n: metadata["inputs"][n] for n in npu_inputs}, "npu_outputs": [boundary_name],
             "host_inputs": {boundary_name: boundary_shape} | {n: metadata["inputs"][n] for n in host_inputs[1:]}}
    paths = []
    for part, part_model in (("npu", npu_model), ("host", host_model)):
        del part_model.metadata_props[:]
        entry = part_model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata | split | {"part": part})
        path = out_dir / f"{part}.onnx"
        onnx.save(part_model, str(path))
        paths.append(path)
    rng = np.random.default_rng(2)
    inputs = {n: rng.random(tuple(shape), dtype=np.float32) for n, shape in metadata["inputs"].items()}
    whole = onnx_outputs(full_onnx, inputs)
    (features,) = onnx_outputs(paths[0], {n: inputs[n] for n in npu_inputs})
    parts = onnx_outputs(paths[1], {boundary_name: features} | {n: inputs[n] for n in host_inputs[1:]})
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(whole, parts))
    if diff > tolerance:
        raise ExportParityError(f"split of {full_onnx} at {scope!r} differs from the whole model by {diff:.3g}")
    return paths
