"""`edge-inference bench`: latency per model and backend, sizes, peak RSS -> JSON + Markdown.

Each (model, backend) runs in its own worker process (clean peak RSS, no torch leaking
into the onnxruntime/hailo measurements), with intra-op threads pinned to ``--threads``
(and CPU affinity with ``--cpus``). After ``--warmup`` calls, ``--runs`` (>= 200) calls of
``backend.run`` on a real input are timed, interleaved across the backends in batches of 10
so every backend sees the same background load (the ratios compare like with like). JSON:
``{"models": {"act": {BACKEND: {"p50_ms", "p95_ms", "p99_ms", "mean_ms", "size_bytes",
"peak_rss_mb", ...}}, "fsq": {...}}, "ratios": {...}, "config": {...}}``.

Models: ``--fsq-model`` (default ``models/fsq_hapt``) and ``--act-model`` (an ACT
checkpoint directory; ``model.onnx`` / ``model.int8.onnx`` are produced there with
``export`` / ``quantize`` first). A missing model or backend library is reported as
skipped, not faked.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from edge_inference.commands.arg_types import non_negative_int, positive_int
from edge_inference.core.errors import CheckFailed, UsageError
from edge_inference.core.files import write_text_atomic
from edge_inference.evaluation.model_bench import (
    ALL_BACKENDS,
    CAR_ACT_DIR,
    bench_model,
    make_car_act,
    markdown_table,
    ratios,
    serve,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="latency/size/RSS benchmark of every model and backend",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default="artifacts/bench.json", help="JSON output path")
    p.add_argument("--markdown", default=None, help="Markdown table path (default: JSON path with .md)")
    p.add_argument("--fsq-model", default="models/fsq_hapt")
    p.add_argument("--act-model", default=None, help="ACT checkpoint directory (skipped when absent)")
    p.add_argument("--act-car", action="store_true",
                   help="bench ACT at the car configuration (360x640 image, chunk 32, 4 encoder / 1 decoder "
                        "layers, ResNet18, D=512): a randomly initialised checkpoint in artifacts/act_car is made "
                        "when --act-model is not given (latency does not depend on the weights)")
    p.add_argument("--runner-runs", type=positive_int, default=50, help="timed calls of the node-level runner")
    p.add_argument("--act-data", default="donkey:../shared/data/donkey/data,../shared/data/donkey/data_2",
                   help="real ACT inputs used to export/quantize the ACT model when its ONNX files are missing")
    p.add_argument("--backends", default=",".join(ALL_BACKENDS))
    p.add_argument("--runs", type=positive_int, default=300, help="timed calls per backend (>= 200: stable p99)")
    p.add_argument("--warmup", type=non_negative_int, default=20)
    p.add_argument("--threads", type=positive_int, default=2, help="intra-op threads for every backend")
    p.add_argument("--cpus", default="", help="CPU affinity, e.g. 0,1 (default: not pinned)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--act-levers", action="store_true",
                   help="int8 quantization levers of the car ACT instead: quantize with each recipe, gate on held-out "
                        "Donkey frames, time all together with torch fp32 and torch-int8 (evaluation/quant_levers)")
    p.add_argument("--levers", default="",
                   help="--act-levers: comma-separated subset (default: all but default+entropy/default+percentile, "
                        "whose histogram calibration holds every activation in memory: name them, with a small "
                        "--lever-calibration)")
    p.add_argument("--lever-dir", default="artifacts/act_levers", help="--act-levers: int8 models and gate reports")
    p.add_argument("--lever-calibration", type=positive_int, default=200, help="--act-levers: calibration frames")
    p.add_argument("--lever-eval", type=positive_int, default=50, help="--act-levers: held-out evaluation frames")
    p.add_argument("--lever-references", default="torch,torch-int8",
                   help="--act-levers: reference backends timed in the same run")
    p.add_argument("--pipeline", action="store_true",
                   help="policy pipeline instead: image->chunk latency and overhead beyond the model (bench_pipeline)")
    from edge_inference.ros.pipeline_bench import add_arguments as add_pipeline_arguments
    add_pipeline_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.pipeline:
        from edge_inference.ros.pipeline_bench import run as run_pipeline
        return run_pipeline(args)
    if args.worker:
        serve(json.loads(args.worker))
        return 0
    if args.runs < 200:
        raise UsageError(f"--runs must be >= 200 for a stable p99, got {args.runs}")
    if args.act_levers:
        return run_levers(args)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.act_car and not args.act_model:
        args.act_model = str(CAR_ACT_DIR)
        if not (CAR_ACT_DIR / "config.json").is_file():
            make_car_act(CAR_ACT_DIR, args.act_data)
    if args.act_model:
        prepare_act(Path(args.act_model), args.act_data)
    models = {"fsq": Path(args.fsq_model)}
    if args.act_model:
        models = {"act": Path(args.act_model)} | models
    report = {"models": {}, "config": {
        "threads": args.threads, "cpus": args.cpus or "not pinned", "runs": args.runs, "warmup": args.warmup,
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version()}}
    if not args.act_model:
        report["models"]["act"] = {b: {"skipped": "no --act-model given"} for b in backends}
    for name, model_dir in models.items():
        print(f"bench {name} ({model_dir}) ...", flush=True)
        report["models"][name] = bench_model(model_dir, backends, args)
        meta_file = model_dir / "model.onnx"
        if meta_file.is_file():
            from edge_inference.deploy.onnx_export import read_onnx_metadata

            meta = read_onnx_metadata(meta_file)
            report["config"][name] = {k: meta[k] for k in ("inputs", "chunk_size", "image_size") if k in meta}
            checkpoint = model_dir / "config.json"
            if name == "act" and checkpoint.is_file():  # state the architecture the numbers are for
                arch = json.loads(checkpoint.read_text())
                report["config"][name] |= {k: arch[k] for k in ("vision_backbone", "dim_model", "n_encoder_layers",
                                                                 "n_decoder_layers", "dim_feedforward") if k in arch}
    results = [(f"{m} {b}", r) for m, by_backend in report["models"].items() for b, r in by_backend.items()]
    if not any("p50_ms" in r for _, r in results):  # skipping some backends is fine; measuring nothing is not
        raise UsageError("nothing was measured, every model/backend was skipped: " + "; ".join(
            f"{name}: {r.get('skipped', r)}" for name, r in results))
    report["ratios"] = ratios(report["models"])
    out = Path(args.json)
    write_text_atomic(out, json.dumps(report, indent=2))
    table = markdown_table(report)
    write_text_atomic(args.markdown or out.with_suffix(".md"), table)
    print(table)
    return 0


def run_levers(args) -> int:
    """`bench --act-levers`: the lever table of the car ACT (evaluation/quant_levers.py) as JSON + Markdown."""
    from edge_inference.evaluation.quant_levers import default_lever_names, levers, markdown, measure_levers

    names = [n.strip() for n in args.levers.split(",") if n.strip()] if args.levers else default_lever_names()
    unknown = sorted(set(names) - set(levers()))
    if unknown:
        raise UsageError(f"unknown levers {unknown}; choose from {list(levers())}")
    if args.json == "artifacts/bench.json":
        args.json = "artifacts/act_levers.json"
    model_dir = Path(args.act_model or CAR_ACT_DIR)
    if not (model_dir / "config.json").is_file():
        make_car_act(model_dir, args.act_data)
    prepare_act(model_dir, args.act_data, quantize_int8=False)  # model.onnx + calibration.npz (torch-int8)
    report = measure_levers(model_dir, names, args)
    write_text_atomic(args.json, json.dumps(report, indent=2))
    table = markdown(report)
    write_text_atomic(args.markdown or Path(args.json).with_suffix(".md"), table)
    print(table)
    return 0


def prepare_act(model_dir: Path, data: str, quantize_int8: bool = True) -> None:
    """Export and quantize the ACT checkpoint when ``model.onnx`` / ``model.int8.onnx`` are missing
    (``quantize_int8=False``: export only)."""
    from edge_inference.cli import main as cli

    def call(argv):
        rc = cli(argv)
        if rc != 0:
            raise CheckFailed(f"`edge-inference {' '.join(argv)}` failed (exit {rc})")

    if not (model_dir / "model.onnx").is_file():
        call(["export", "--model", str(model_dir), "--dataset", data])
    if quantize_int8 and not (model_dir / "model.int8.onnx").is_file():
        call(["quantize", "--model", str(model_dir), "--dataset", data, "--num-calibration", "200",
                        "--num-eval", "50"])
    if not (model_dir / "calibration.npz").is_file():  # torch-int8 calibrates on these at load
        from edge_inference.deploy.calibration_samples import act_donkey_samples
        from edge_inference.deploy.onnx_export import read_onnx_metadata

        kind, _, location = data.partition(":")
        if kind == "donkey":
            samples = act_donkey_samples(location.split(","), read_onnx_metadata(model_dir / "model.onnx"), 50)
            np.savez(model_dir / "calibration.npz", **samples)


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_inference.commands.bench.bench``: the worker entry (independent of the CLI registry)."""
    parser = argparse.ArgumentParser(prog="edge-inference")
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
