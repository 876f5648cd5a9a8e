"""Which int8 quantization levers pay for the car ACT (the library behind `edge-inference bench --act-levers`).

Each lever is a ``QuantRecipe`` (``edge_inference/deploy/quantization.py``) applied to the same fp32
``model.onnx`` (the car ACT of ``bench --act-car`` unless ``--act-model`` is given), run with a
``SessionTuning`` (``edge_inference/backends/onnxruntime.py``: how ORT's threads wait, which fusions). For every
lever: quantize on the first ``--lever-calibration`` Donkey frames and evaluate the ACT gate on the
next ``--lever-eval`` frames exactly as ``edge-inference quantize --dataset donkey:...`` does
(normalized MAE vs fp32 <= 0.05, cosine), then time every int8 model together with torch fp32 and
torch-int8 in one run (one worker process per model, batches of 10 calls interleaved, so the
ratios share the background load). JSON: ``{"levers": {NAME: {"recipe", "gate", "p50_ms", ...}},
"reference": {"torch": ..., "torch-int8": ...}, "config": ...}`` plus a Markdown table beside it.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from edge_inference.backends.onnxruntime import SessionTuning
from edge_inference.deploy.quantization import ACT_RECIPE, LEGACY_RECIPE, QuantRecipe

#: How ORT ran the int8 ACT before the second round of issue 17: threads asleep between ops, SkipLayerNorm fused.
ROUND1_TUNING = SessionTuning(spin_in_run=False, skip_layer_norm_fusion=True)


def levers() -> dict[str, tuple[str, QuantRecipe, SessionTuning]]:
    """name -> (what changes, recipe, session tuning). One lever at a time on top of the legacy
    recipe, the first round's default (``round1``) or the current default."""
    return _recipe_levers() | _round2_levers()


def default_lever_names() -> list[str]:
    """What ``bench --act-levers`` runs without ``--levers``: every lever but the histogram calibrators.

    Entropy and Percentile keep every activation of every calibration frame in memory (11 GB for 40
    frames of the car ACT; the 200 frames of the gate were killed at 19 GB), so they run only when named.
    """
    return [name for name, (_, recipe, _) in levers().items() if recipe.calibrate_method == "MinMax"]


def _round2_levers() -> dict[str, tuple[str, QuantRecipe, SessionTuning]]:
    round1 = replace(ACT_RECIPE, stem_space_to_depth=False)
    return {
        "round1": ("first-round default: backbone int8, Gemm float outputs; ORT threads sleep between ops, "
                   "SkipLayerNorm fused", round1, ROUND1_TUNING),
        "round1+spin-in-run": ("+ ORT threads spin inside a Run, stop at its end", round1,
                               replace(ROUND1_TUNING, spin_in_run=True)),
        "round1+no-skipln-fusion": ("+ residual Add + LayerNormalization left unfused", round1,
                                    replace(ROUND1_TUNING, skip_layer_norm_fusion=False)),
        "round1+stem-s2d": ("+ RGB stem as SpaceToDepth + 4x4 conv over 12 channels", ACT_RECIPE, ROUND1_TUNING),
    }


def _recipe_levers() -> dict[str, tuple[str, QuantRecipe, SessionTuning]]:
    """The recipe levers (first round: on the legacy recipe with its session; then on the current default)."""
    old = {name: (what, recipe, ROUND1_TUNING) for name, (what, recipe) in _first_round().items()}
    new = {name: (what, recipe, SessionTuning()) for name, (what, recipe) in _on_default().items()}
    return old | new


def _first_round() -> dict[str, tuple[str, QuantRecipe]]:
    base = LEGACY_RECIPE
    backbone = replace(base, backbone_op_types=("Relu", "Add", "MaxPool"))
    return {
        "legacy": ("before #17: Conv/Gemm/weight-MatMul QDQ, per-channel, MinMax", base),
        "legacy+preprocess": ("+ ORT quant_pre_process (symbolic shapes, ORT basic optimizer)",
                              replace(base, preprocess=True)),
        "legacy+per-tensor": ("per-tensor weights instead of per-channel", replace(base, per_channel=False)),
        "legacy+qoperator": ("QOperator format instead of QDQ", replace(base, quant_format="QOperator")),
        "legacy+gemm-float-out": ("Gemm outputs float (QGemm -> float, no Q/DQ after)",
                                  replace(base, float_output_op_types=("Gemm",))),
        "legacy+transformer-fusion": ("+ ORT transformer optimizer (bert) before quantizing",
                                      replace(base, transformer_fusion=True)),
        "backbone-int8": ("+ Relu/Add/MaxPool quantized inside the ResNet", backbone),
    }


def _on_default() -> dict[str, tuple[str, QuantRecipe]]:
    new = ACT_RECIPE
    return {
        "default": ("the default: round1 + all three round-2 levers", new),
        "default+preprocess": ("+ ORT quant_pre_process on top of the default", replace(new, preprocess=True)),
        "default+attn-matmul": ("+ attention MatMuls (activation x activation) int8",
                                replace(new, exclude_activation_matmuls=False)),
        "default+all-add": ("+ Add/Relu quantized in the transformer too",
                            replace(new, op_types=("Conv", "Gemm", "MatMul", "Relu", "Add", "MaxPool"),
                                    backbone_op_types=())),
        "default+keep-relu": ("+ QDQKeepRemovableActivations (Relu kept explicit)",
                              replace(new, extra_options=(("QDQKeepRemovableActivations", True),))),
        "default+act-symmetric": ("+ ActivationSymmetric", replace(new, activation_symmetric=True)),
        "default+s8s8": ("int8 activations (S8S8) instead of uint8",
                         replace(new, activation_type="QInt8", activation_symmetric=True)),
        "default+qoperator": ("default in QOperator format", replace(new, quant_format="QOperator")),
        "default+percentile": ("Percentile calibration instead of MinMax",
                               replace(new, calibrate_method="Percentile")),
        "default+entropy": ("Entropy calibration instead of MinMax", replace(new, calibrate_method="Entropy")),
    }


def _samples(model_dir: Path, data: str, n_cal: int, n_eval: int, cache: Path) -> tuple[dict, dict]:
    """The calibration/evaluation split of `quantize --dataset donkey:...` (cached as .npz)."""
    from edge_inference.deploy.calibration_samples import act_donkey_samples
    from edge_inference.deploy.onnx_export import read_onnx_metadata
    from edge_inference.deploy.quantization import load_samples, split_samples

    if not cache.is_file():
        kind, _, location = data.partition(":")
        if kind != "donkey":
            raise SystemExit(f"--act-levers needs --act-data donkey:DIR[,DIR], got {data!r}")
        samples = act_donkey_samples(location.split(","), read_onnx_metadata(model_dir / "model.onnx"),
                                     n_cal + n_eval)
        np.savez(cache, **samples)
    return split_samples(load_samples(cache), n_cal)


def quantize_levers(model_dir: Path, out_dir: Path, names: list[str], args) -> dict:
    from edge_inference.deploy.quantization import Gates, evaluate_int8, quantize_onnx_static

    out_dir.mkdir(parents=True, exist_ok=True)
    calibration, evaluation = _samples(model_dir, args.act_data, args.lever_calibration, args.lever_eval,
                                       out_dir / "samples.npz")
    results = {}
    table = levers()
    by_recipe: dict[QuantRecipe, str] = {}  # levers that differ only in the session share one int8 file
    for name in names:
        what, recipe, tuning = table[name]
        owner = by_recipe.setdefault(recipe, name)  # the first lever with this recipe names the file
        path = out_dir / f"{owner}.int8.onnx"
        report_file = out_dir / f"{owner}.gate.json"
        cached = report_file.is_file() and (path.is_file() or "error" in json.loads(report_file.read_text()))
        if not cached:
            print(f"  quantize {owner} ...", flush=True)
            t0 = time.perf_counter()
            try:
                quantize_onnx_static(model_dir / "model.onnx", path, calibration, recipe=recipe)
                report = evaluate_int8(model_dir / "model.onnx", path, evaluation, Gates())
            except Exception as err:  # noqa: BLE001 - a lever ORT cannot apply is a result too
                report = {"error": f"{type(err).__name__}: {err}"}
            report["quantize_s"] = round(time.perf_counter() - t0, 1)
            report_file.write_text(json.dumps(report, indent=2))
        report = json.loads(report_file.read_text())
        results[name] = {"what": what, "recipe": recipe.describe(), "tuning": asdict(tuning), "model_file": str(path),
                         "gate": report}
    return results


def measure_levers(model_dir: Path, names: list[str], args) -> dict:
    """Quantize ``model_dir/model.onnx`` with each named lever, gate it, time all in one run: the report."""
    from edge_inference.evaluation.model_bench import Worker

    out_dir = Path(args.lever_dir)
    print(f"quantize {len(names)} levers into {out_dir} ...", flush=True)
    results = quantize_levers(model_dir, out_dir, names, args)
    timed = {f"ort-int8:{n}": r["model_file"] for n, r in results.items() if "error" not in r["gate"]}
    references = [b for b in ("torch", "torch-int8", "onnxruntime") if b in args.lever_references.split(",")]
    workers = {}
    for ref in references:
        print(f"  load {ref} ...", flush=True)
        workers[ref] = Worker(model_dir, ref, args)
    for key, file in timed.items():
        print(f"  load {key} ...", flush=True)
        workers[key] = Worker(Path(file), "onnxruntime-int8", args, tuning=results[key.split(":", 1)[1]]["tuning"])
    live = [w for w in workers.values() if not w.skipped]
    for what, total in (("model", args.runs), ("runner", args.runner_runs)):
        for done in range(0, total, 10):
            for worker in live:
                worker.request(what, min(10, total - done))
    timings = {k: w.finish() for k, w in workers.items()}
    torch_p50 = timings.get("torch", {}).get("p50_ms")
    for name, r in results.items():
        t = timings.get(f"ort-int8:{name}", {})
        r |= {k: t[k] for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "runner_p50_ms", "peak_rss_mb") if k in t}
        r["timed_with"] = t.get("tuning")  # the session the worker actually built
        if "p50_ms" in t:
            r["size_bytes"] = Path(r["model_file"]).stat().st_size
            if torch_p50:
                r["speedup_vs_torch_p50"] = torch_p50 / t["p50_ms"]
    report = {"levers": results, "reference": {k: timings[k] for k in references},
              "config": {"model": str(model_dir), "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
                         "calibration_frames": args.lever_calibration, "evaluation_frames": args.lever_eval,
                         "machine": f"{platform.machine()} {os.cpu_count()} cores", "cpu_flags": _isa_flags(),
                         "onnxruntime": _ort_version()}}
    return report


def _isa_flags() -> list[str]:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp",
                                             "i8mm", "asimd")})


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def markdown(report: dict) -> str:
    cfg = report["config"]
    title = (f"ACT int8 levers: {cfg['machine']} ({', '.join(cfg['cpu_flags'])}), onnxruntime {cfg['onnxruntime']}, "
             f"{cfg['threads']} threads, {cfg['runs']} runs, all models interleaved in one run; gate on "
             f"{cfg['evaluation_frames']} held-out Donkey frames after {cfg['calibration_frames']} calibration frames")
    lines = [title, "", "| lever | what | p50 ms | p95 ms | × torch fp32 (p50) | size MB | NMAE | cosine | gate |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, ref in report["reference"].items():
        if "p50_ms" in ref:
            lines.append(f"| {name} | reference | {ref['p50_ms']:.1f} | {ref['p95_ms']:.1f} | | "
                         f"{ref['size_bytes'] / 1e6:.1f} | | | |")
    for name, r in report["levers"].items():
        gate = r["gate"]
        if "error" in gate:
            lines.append(f"| {name} | {r['what']} | failed: {gate['error'][:120]} | | | | | | |")
            continue
        act = gate.get("act", {})
        p50 = f"{r['p50_ms']:.1f}" if "p50_ms" in r else "-"
        p95 = f"{r['p95_ms']:.1f}" if "p95_ms" in r else "-"
        speed = f"{r['speedup_vs_torch_p50']:.2f}" if "speedup_vs_torch_p50" in r else "-"
        lines.append(f"| {name} | {r['what']} | {p50} | {p95} | {speed} | {gate['int8_bytes'] / 1e6:.1f} | "
                     f"{act.get('nmae', float('nan')):.4f} | {act.get('cosine_similarity', float('nan')):.5f} | "
                     f"{'pass' if gate.get('passed') else 'FAIL'} |")
    return "\n".join(lines) + "\n"
