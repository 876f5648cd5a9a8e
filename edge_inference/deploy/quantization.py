"""int8 quantization of exported ONNX models, with an accuracy gate.

ONNX Runtime static QDQ quantization: per-channel int8 weights, uint8 activations
(U8S8, the fast path on x86 VNNI and ARM), ranges calibrated on real samples. What is
quantized is a ``QuantRecipe``: for FSQ only the compute-heavy ops (Conv, Gemm, MatMul), so
element-wise ops such as the FSQ bound/round stay float and code indices survive
quantization; for ACT also the ResNet's Relu/Add/MaxPool, with Gemm outputs left float
(``ACT_RECIPE``; why, with the measurements: docs/PERFORMANCE_NOTES_17.md).

The int8 model is only kept when it passes the gates against fp32 on held-out samples:
- ACT: action MAE normalized by the per-dimension std of the fp32 actions (<= 0.05);
  cosine similarity is reported too;
- FSQ: accuracy drop in points (<= 1.0), plus argmax agreement and FSQ code agreement.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_inference.core.errors import CheckFailed
from edge_inference.core.files import InputFileError, Staging, load_npz, write_text_atomic
from edge_inference.deploy.onnx_export import read_onnx_metadata, write_onnx_metadata


class QuantizationGateError(CheckFailed, RuntimeError):
    """The int8 model is not accurate enough against fp32."""


@dataclass
class Gates:
    act_nmae_max: float = 0.05
    fsq_accuracy_drop_max_points: float = 1.0


def load_samples(path: str | Path) -> dict[str, np.ndarray]:
    """Samples {input name or 'labels': (N, ...)} from an .npz file or a directory of them."""
    path = Path(path)
    files = sorted(path.glob("*.npz")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise InputFileError(f"no .npz samples ({path})")
    parts: dict[str, list[np.ndarray]] = {}
    for file in files:
        for key, value in load_npz(file, what="samples").items():
            parts.setdefault(key, []).append(value)
    try:
        samples = {k: np.concatenate(v) for k, v in parts.items()}
    except ValueError as err:
        raise InputFileError(f"sample files disagree in shape: {err} ({path})") from err
    if not samples or min(len(v) for v in samples.values()) == 0:
        raise InputFileError(f"no samples ({path})")
    return samples


def split_samples(samples: dict[str, np.ndarray], n_calibration: int) -> tuple[dict, dict]:
    """(calibration, evaluation): disjoint, calibration first."""
    n = min(len(v) for v in samples.values())
    if n < 2:
        raise InputFileError(f"need at least 2 samples to calibrate and evaluate, got {n}")
    cut = n_calibration if n > n_calibration else n // 2  # too few samples: half and half
    return ({k: v[:cut] for k, v in samples.items()}, {k: v[cut:n] for k, v in samples.items()})


def _batch1(samples: dict[str, np.ndarray], names: list[str]) -> list[dict[str, np.ndarray]]:
    n = min(len(samples[k]) for k in names)
    return [{k: np.asarray(samples[k][i:i + 1], dtype=np.float32) for k in names} for i in range(n)]


def activation_matmuls(path: str | Path) -> list[str]:
    """MatMul nodes with no weight input (attention scores, attention x values).

    Both operands are activations with wide, input-dependent ranges; int8 there costs
    accuracy and saves little time, so they stay float.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    weights |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and not (set(n.input) & weights)]


def first_conv(path: str | Path) -> list[str]:
    """The Conv that reads the model input (FSQ: the 9 IMU channels), as a one-name list.

    FSQ keeps it (and so its input) in float on the CPU int8 model: SITTING and STANDING
    differ by a small tilt in total_acc, and a uint8 input step blurred it (streamed
    HAPT exp 34: int8 0.944 vs fp32 0.986 with it quantized, 0.980 with it float).
    """
    import onnx

    graph = onnx.load(str(path)).graph
    inputs = {i.name for i in graph.input}
    return [n.name for n in graph.node if n.op_type == "Conv" and n.input and n.input[0] in inputs][:1]


@dataclass(frozen=True)
class QuantRecipe:
    """How ``quantize_onnx_static`` quantizes a model (the levers measured in ``bench --act-levers``).

    - ``op_types``: op types quantized everywhere; ``backbone_op_types``: op types quantized only
      inside the CNN backbone (ACT: node names under ``/backbone/``), so the int8 path of the ResNet is
      not broken by float Relu/Add/MaxPool while the transformer's residual Adds stay float (the
      LayerNorm after each takes float);
    - ``float_output_op_types``: ops whose output is left float (no Q/DQ pair after them) -- a Gemm
      feeding float ops (reshape to heads, LayerNorm, residual Add) becomes a QGemm with a float
      output instead of QGemm -> Q -> DQ;
    - ``exclude_activation_matmuls``: attention MatMuls (activation x activation) stay float;
    - ``preprocess``: ORT ``quant_pre_process`` (symbolic shape inference + ORT basic optimizer);
    - ``transformer_fusion``: ORT's transformer optimizer (``onnxruntime.transformers``, model type
      bert) before quantizing, for Attention/SkipLayerNormalization fusions;
    - ``stem_space_to_depth``: rewrite strided convs over few channels (the ResNet stem) as
      SpaceToDepth + stride-1 conv before quantizing (``graph_rewrites.space_to_depth_stem``; exact in fp32).
    """

    op_types: tuple[str, ...] = ("Conv", "Gemm", "MatMul")
    backbone_op_types: tuple[str, ...] = ()
    float_output_op_types: tuple[str, ...] = ()
    exclude_activation_matmuls: bool = True
    per_channel: bool = True
    quant_format: str = "QDQ"  # or "QOperator"
    calibrate_method: str = "MinMax"  # MinMax | Entropy | Percentile
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    activation_symmetric: bool = False
    weight_symmetric: bool = True
    preprocess: bool = False
    transformer_fusion: bool = False
    extra_options: tuple[tuple[str, Any], ...] = ()
    float_input_conv: bool = False  # keep the Conv reading the model input float (``first_conv``)
    stem_space_to_depth: bool = False

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra_options"] = dict(self.extra_options)
        return d


#: Conv/Gemm/weight-MatMul only: the FSQ default (its bound/round stay float), and the ACT default
#: before issue 17 (every Relu, residual Add and MaxPool of the ResNet ran in float between a
#: DequantizeLinear and a QuantizeLinear).
LEGACY_RECIPE = QuantRecipe()

#: The FSQ default: the legacy op set with the input conv kept float (see ``first_conv``).
FSQ_RECIPE = QuantRecipe(float_input_conv=True)

#: The ACT default (issue 17, docs/PERFORMANCE_NOTES_17.md): the whole ResNet stays int8 (Relu folded into
#: the Conv's QuantizeLinear, QLinearAdd residuals, uint8 MaxPool), so ORT runs it as NHWC QLinearConv
#: without float round trips; Gemm outputs stay float (QGemm with float output feeds the float
#: LayerNorm/attention directly); the 7x7 stride-2 RGB stem runs as SpaceToDepth + a 4x4 conv over
#: 12 channels (5.2 -> 1.9 ms on the car ACT).
ACT_RECIPE = QuantRecipe(backbone_op_types=("Relu", "Add", "MaxPool"), float_output_op_types=("Gemm",),
                         stem_space_to_depth=True)


def default_recipe(model: str) -> QuantRecipe:
    """The recipe ``quantize`` uses for a model kind ("act" or "fsq_classifier")."""
    return ACT_RECIPE if model == "act" else FSQ_RECIPE if model == "fsq_classifier" else LEGACY_RECIPE


def _nodes_to_exclude(path: Path, recipe: QuantRecipe) -> tuple[list[str], list[str]]:
    """(op types to quantize, node names to exclude) for ``recipe`` on the model at ``path``."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    excluded = activation_matmuls(path) if recipe.exclude_activation_matmuls else []
    extra = [t for t in recipe.backbone_op_types if t not in recipe.op_types]
    excluded += [n.name for n in graph.node if n.op_type in extra and "/backbone/" not in n.name]
    if recipe.float_input_conv:
        excluded += first_conv(path)
    return list(recipe.op_types) + extra, excluded


def quantize_onnx_static(fp32_path: str | Path, out_path: str | Path, calibration: dict[str, np.ndarray],
                         per_channel: bool = True, recipe: QuantRecipe | None = None) -> Path:
    """fp32 ONNX -> int8 ONNX calibrated on ``calibration`` {input: (N, ...)}; metadata kept.

    ``recipe`` says what is quantized and how (default: ``default_recipe`` of the model);
    ``per_channel=False`` overrides the recipe's per-channel weights.
    """
    from dataclasses import replace

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    metadata = read_onnx_metadata(fp32_path)
    recipe = recipe or default_recipe(metadata["model"])
    if not per_channel:
        recipe = replace(recipe, per_channel=False)
    names = list(metadata["inputs"])
    missing = sorted(set(names) - set(calibration))
    if missing:
        raise InputFileError(f"calibration samples lack model inputs {missing} (have {sorted(calibration)})")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(_batch1(calibration, names))

        def get_next(self):
            return next(self._it, None)

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(fp32_path)
        if recipe.preprocess:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            source = Path(tmp) / "pre.onnx"
            quant_pre_process(str(fp32_path), str(source))
        if recipe.transformer_fusion:
            from onnxruntime.transformers.optimizer import optimize_model

            fused = optimize_model(str(source), model_type="bert", opt_level=0)
            source = Path(tmp) / "fused.onnx"
            fused.save_model_to_file(str(source))
        rewritten: list[str] = []
        if recipe.stem_space_to_depth:
            import onnx

            from edge_inference.deploy.graph_rewrites import space_to_depth_stem

            model = onnx.load(str(source))
            rewritten = space_to_depth_stem(model)
            source = Path(tmp) / "stem_s2d.onnx"
            onnx.save(model, str(source))
        op_types, excluded = _nodes_to_exclude(source, recipe)
        extra_options = {"ActivationSymmetric": recipe.activation_symmetric,
                         "WeightSymmetric": recipe.weight_symmetric, **dict(recipe.extra_options)}
        if recipe.float_output_op_types:
            extra_options["OpTypesToExcludeOutputQuantization"] = list(recipe.float_output_op_types)
        tmp_out = Path(tmp) / "int8.onnx"
        quantize_static(str(source), str(tmp_out), Reader(), quant_format=getattr(QuantFormat, recipe.quant_format),
                        op_types_to_quantize=op_types, per_channel=recipe.per_channel, nodes_to_exclude=excluded,
                        activation_type=getattr(QuantType, recipe.activation_type),
                        weight_type=getattr(QuantType, recipe.weight_type),
                        calibrate_method=getattr(CalibrationMethod, recipe.calibrate_method),
                        extra_options=extra_options)
        metadata["quantization"] = {"format": recipe.quant_format,
                                    "weights": "int8 per-channel" if recipe.per_channel else "int8",
                                    "activations": "uint8" if recipe.activation_type == "QUInt8" else "int8",
                                    "ops": op_types, "float_matmuls": len(activation_matmuls(source))
                                    if recipe.exclude_activation_matmuls else 0,
                                    "float_outputs": list(recipe.float_output_op_types),
                                    "float_nodes": first_conv(source) if recipe.float_input_conv else [],
                                    "space_to_depth_convs": rewritten,
                                    "recipe": recipe.describe(),
                                    "calibration_samples": int(min(len(calibration[k]) for k in names))}
        write_onnx_metadata(tmp_out, metadata)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp_out), out_path)
    return out_path


def act_comparison(fp32: np.ndarray, int8: np.ndarray, action_std: list[float] | None = None) -> dict[str, float]:
    """Actions (N, chunk, A): MAE per dimension / action std (the checkpoint's dataset std when
    known, else the std of the fp32 actions), averaged; mean cosine similarity per chunk."""
    fp32, int8 = np.asarray(fp32, np.float64), np.asarray(int8, np.float64)
    std = np.asarray(action_std, np.float64) if action_std else fp32.reshape(-1, fp32.shape[-1]).std(axis=0)
    std = np.maximum(std, 1e-6)
    nmae = float((np.abs(int8 - fp32).reshape(-1, fp32.shape[-1]).mean(axis=0) / std).mean())
    a, b = fp32.reshape(len(fp32), -1), int8.reshape(len(int8), -1)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"nmae": nmae, "cosine_similarity": float(cos.mean()), "cosine_similarity_min": float(cos.min()),
            "max_abs_diff": float(np.abs(int8 - fp32).max()), "action_std": std.tolist()}


def fsq_comparison(fp32: tuple[np.ndarray, np.ndarray], int8: tuple[np.ndarray, np.ndarray],
                   labels: np.ndarray | None) -> dict[str, Any]:
    """(probs (N, K), levels (N, D)) of both models -> accuracy delta, agreement, code agreement."""
    pred32, pred8 = fp32[0].argmax(1), int8[0].argmax(1)
    report = {"agreement": float((pred32 == pred8).mean()),
              "code_agreement": float(np.all(np.rint(fp32[1]) == np.rint(int8[1]), axis=1).mean())}
    if labels is not None:
        scored = labels >= 0  # negative: transition / unlabelled / mixed windows (window_labels.py)
        report["scored_samples"] = int(scored.sum())
    if labels is not None and scored.any():
        acc32 = float((pred32[scored] == labels[scored]).mean())
        acc8 = float((pred8[scored] == labels[scored]).mean())
        report |= {"accuracy_fp32": acc32, "accuracy_int8": acc8,
                   "accuracy_drop_points": 100.0 * (acc32 - acc8)}
    return report


def _outputs(path: Path, sets: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Outputs of ``path`` on each batch-1 set, stacked; one ONNX Runtime session for all sets."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runs = [session.run(None, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in s.items()}) for s in sets]
    return [np.concatenate([r[i] for r in runs]) for i in range(len(runs[0]))]


def evaluate_int8(fp32_path: Path, int8_path: Path, evaluation: dict[str, np.ndarray], gates: Gates) -> dict:
    """Compare both models on ``evaluation`` samples; the report says whether the gates pass."""
    metadata = read_onnx_metadata(fp32_path)
    sets = _batch1(evaluation, list(metadata["inputs"]))
    out32, out8 = _outputs(fp32_path, sets), _outputs(int8_path, sets)
    report: dict[str, Any] = {"model": metadata["model"], "evaluation_samples": len(sets), "gates": asdict(gates),
                              "fp32_bytes": fp32_path.stat().st_size, "int8_bytes": int8_path.stat().st_size}
    report["size_ratio"] = report["int8_bytes"] / report["fp32_bytes"]
    if metadata["model"] == "act":
        report["act"] = act_comparison(out32[0], out8[0], metadata.get("action_std"))
        failures = [f"ACT normalized MAE {report['act']['nmae']:.4f} > {gates.act_nmae_max}"] \
            if report["act"]["nmae"] > gates.act_nmae_max else []
    else:
        labels = evaluation.get("labels")
        report["fsq"] = fsq_comparison((out32[0], out32[1]), (out8[0], out8[1]),
                                       None if labels is None else np.asarray(labels)[:len(sets)])
        drop = report["fsq"].get("accuracy_drop_points")
        if drop is None:
            failures = ["FSQ gate needs labelled evaluation samples ('labels')"]
        else:
            failures = [f"FSQ accuracy drop {drop:.2f} points > {gates.fsq_accuracy_drop_max_points}"] \
                if drop > gates.fsq_accuracy_drop_max_points else []
    report["passed"] = not failures
    report["failures"] = failures
    return report


def quantize_with_gate(fp32_path: str | Path, out_path: str | Path, calibration: dict[str, np.ndarray],
                       evaluation: dict[str, np.ndarray], gates: Gates = Gates(),
                       report_path: str | Path | None = None, per_channel: bool = True,
                       recipe: QuantRecipe | None = None) -> dict:
    """Quantize, compare, write the report; keep ``out_path`` only if the gates pass.

    Raises QuantizationGateError (after writing the report) when a gate fails.
    """
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    with Staging(out_path.parent) as stage:  # beside the target: the rename into place is atomic
        candidate = quantize_onnx_static(fp32_path, stage.path(out_path.name), calibration, per_channel, recipe)
        report = evaluate_int8(fp32_path, candidate, evaluation, gates)
        report["calibration_samples"] = int(min(len(v) for k, v in calibration.items() if k != "labels"))
        if report["passed"]:
            stage.commit()
            report["int8_model"] = out_path.name
    if report_path is not None:
        write_text_atomic(report_path, json.dumps(report, indent=2))
    if not report["passed"]:
        raise QuantizationGateError("; ".join(report["failures"]))
    return report

