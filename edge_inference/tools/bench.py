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
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ALL_BACKENDS = ["torch", "torch-int8", "onnxruntime", "onnxruntime-int8", "hailo"]


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
    p.add_argument("--runner-runs", type=int, default=50, help="timed calls of the node-level runner")
    p.add_argument("--act-data", default="donkey:../shared/data/donkey/data,../shared/data/donkey/data_2",
                   help="real ACT inputs used to export/quantize the ACT model when its ONNX files are missing")
    p.add_argument("--backends", default=",".join(ALL_BACKENDS))
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for every backend")
    p.add_argument("--cpus", default="", help="CPU affinity, e.g. 0,1 (default: not pinned)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--act-levers", action="store_true",
                   help="int8 quantization levers of the car ACT instead: quantize with each recipe, gate on held-out "
                        "Donkey frames, time all together with torch fp32 and torch-int8 (bench_levers)")
    p.add_argument("--levers", default="", help="--act-levers: comma-separated subset (default: all)")
    p.add_argument("--lever-dir", default="artifacts/act_levers", help="--act-levers: int8 models and gate reports")
    p.add_argument("--lever-calibration", type=int, default=200, help="--act-levers: calibration frames")
    p.add_argument("--lever-eval", type=int, default=50, help="--act-levers: held-out evaluation frames")
    p.add_argument("--lever-references", default="torch,torch-int8",
                   help="--act-levers: reference backends timed in the same run")
    p.add_argument("--pipeline", action="store_true",
                   help="policy pipeline instead: image->chunk latency and overhead beyond the model (bench_pipeline)")
    from .bench_pipeline import add_arguments as add_pipeline_arguments
    add_pipeline_arguments(p)
    p.set_defaults(func=run)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    x = np.asarray(samples_ms, dtype=np.float64)
    return {"p50_ms": float(np.percentile(x, 50)), "p95_ms": float(np.percentile(x, 95)),
            "p99_ms": float(np.percentile(x, 99)), "mean_ms": float(x.mean()), "runs": int(x.size)}


def model_size_bytes(backend) -> int:
    """Bytes of what the backend loads: the file, or for torch backends the weights it holds."""
    path = Path(backend.model_file)
    if path.is_file():
        size = path.stat().st_size
        host = backend.metadata.get("host_model")
        return size + ((path.parent / host).stat().st_size if host else 0)
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(backend.module.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def example_inputs(model_dir: Path, metadata: dict) -> dict[str, np.ndarray]:
    """A real sample when the model dir has one (calibration.npz), else a deterministic random one."""
    calib = (model_dir if model_dir.is_dir() else model_dir.parent) / "calibration.npz"
    names = list(metadata["inputs"])
    if calib.is_file():
        with np.load(calib) as data:
            if all(n in data for n in names):
                return {n: np.asarray(data[n][:1], dtype=np.float32) for n in names}
    rng = np.random.default_rng(0)
    return {n: rng.random(tuple(shape), dtype=np.float32) for n, shape in metadata["inputs"].items()}


def runner_call(backend):
    """A zero-argument call of the node-level runner (sensor preprocessing + model) on synthetic raw data."""
    from edge_inference.runners import BehaviorRunner, PolicyRunner

    rng = np.random.default_rng(0)
    if backend.metadata["model"] == "act":
        runner = PolicyRunner(backend)
        image = rng.integers(0, 256, (runner.image_height, runner.image_width, 3), dtype=np.uint8)
        state = np.zeros(runner.state_dim, np.float32)
        return lambda: runner.predict(image, state)
    runner = BehaviorRunner(backend)
    t = np.arange(runner.window_length) / runner.sample_rate_hz
    window = np.zeros((runner.window_length, 9), np.float32)
    window[:, 0] = np.sin(2 * np.pi * 2 * t)
    window[:, 2] = 9.81 + 0.1 * rng.standard_normal(t.size)
    return lambda: runner.predict(window)


def timed(call, n: int) -> list[float]:
    timings = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        call()
        timings.append((time.perf_counter_ns() - t0) / 1e6)
    return timings


def serve(spec: dict) -> None:
    """Worker process: load one backend, then answer timing requests on stdin, one JSON line each.

    Requests: ``model N`` / ``runner N`` -> list of N call times (ms); ``done`` -> sizes,
    peak RSS and whether torch was imported. The driver interleaves small batches of
    every backend, so all backends see the same background load.
    """
    import resource

    if spec["cpus"]:
        os.sched_setaffinity(0, spec["cpus"])
    from edge_inference.backends import create_backend

    started = time.perf_counter()
    backend = create_backend(spec["backend"], spec["model"], threads=spec["threads"])
    load_s = time.perf_counter() - started
    inputs = example_inputs(Path(spec["model"]), backend.metadata)
    calls = {"model": lambda: backend.run(inputs), "runner": runner_call(backend)}
    for call in calls.values():
        timed(call, spec["warmup"])
    print(json.dumps({"ready": True, "load_s": load_s}), flush=True)
    for line in sys.stdin:
        what, _, count = line.strip().partition(" ")
        if what == "done":
            break
        print(json.dumps(timed(calls[what], int(count))), flush=True)
    print(json.dumps({"size_bytes": model_size_bytes(backend), "load_s": load_s,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "torch_imported": "torch" in sys.modules, "model_file": str(backend.model_file)}), flush=True)
    backend.close()


class Worker:
    """Driver side of one ``serve`` process."""

    def __init__(self, model_dir: Path, backend: str, args):
        spec = {"model": str(model_dir), "backend": backend, "threads": args.threads, "warmup": args.warmup,
                "cpus": [int(c) for c in args.cpus.split(",") if c.strip()]}
        cmd = [sys.executable, "-m", "edge_inference.tools.bench", "--worker", json.dumps(spec)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.timings: dict[str, list[float]] = {"model": [], "runner": []}
        self.skipped = None
        line = self.proc.stdout.readline()
        if not line:
            self.skipped = (self.proc.stderr.read().strip().splitlines() or ["worker failed"])[-1]
            self.proc.wait()

    def request(self, what: str, n: int) -> None:
        self.proc.stdin.write(f"{what} {n}\n")
        self.proc.stdin.flush()
        self.timings[what] += json.loads(self.proc.stdout.readline())

    def finish(self) -> dict:
        if self.skipped:
            return {"skipped": self.skipped}
        self.proc.stdin.write("done\n")
        self.proc.stdin.flush()
        info = json.loads(self.proc.stdout.readline())
        self.proc.wait()
        return percentiles(self.timings["model"]) | \
            {f"runner_{k}": v for k, v in percentiles(self.timings["runner"]).items()} | info


def bench_model(model_dir: Path, backends: list[str], args, batch: int = 10) -> dict:
    """All backends of one model, timed in interleaved batches of ``batch`` calls."""
    workers = {}
    for name in backends:
        print(f"  load {name} ...", flush=True)
        workers[name] = Worker(model_dir, name, args)
    live = [w for w in workers.values() if not w.skipped]
    for what, total in (("model", args.runs), ("runner", args.runner_runs)):
        done = 0
        while done < total:
            n = min(batch, total - done)
            for worker in live:
                worker.request(what, n)
            done += n
    return {name: worker.finish() for name, worker in workers.items()}


def ratios(models: dict) -> dict:
    out = {}
    for name, results in models.items():
        ok = {b: r for b, r in results.items() if "p50_ms" in r}
        entry = {}
        if "torch" in ok and "onnxruntime-int8" in ok:
            entry["speedup_onnxruntime_int8_vs_torch_p50"] = ok["torch"]["p50_ms"] / ok["onnxruntime-int8"]["p50_ms"]
        if "torch" in ok and "onnxruntime" in ok:
            entry["speedup_onnxruntime_vs_torch_p50"] = ok["torch"]["p50_ms"] / ok["onnxruntime"]["p50_ms"]
        if "onnxruntime" in ok and "onnxruntime-int8" in ok:
            entry["int8_onnx_size_fraction"] = ok["onnxruntime-int8"]["size_bytes"] / ok["onnxruntime"]["size_bytes"]
        out[name] = entry
    return out


def markdown_table(report: dict) -> str:
    lines = [f"Benchmark: {report['config']['machine']}, {report['config']['threads']} threads, "
             f"{report['config']['runs']} runs after {report['config']['warmup']} warm-up, backends interleaved", "",
             "model = backend.run on a prepared input; runner = node-level predict incl. preprocessing", "",
             "| model | backend | p50 ms | p95 ms | p99 ms | runner p50 ms | runner p95 ms | size | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model, results in report["models"].items():
        for backend, r in results.items():
            if "p50_ms" in r:
                lines.append(f"| {model} | {backend} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['p99_ms']:.3f} | "
                             f"{r['runner_p50_ms']:.3f} | {r['runner_p95_ms']:.3f} | "
                             f"{r['size_bytes'] / 1e6:.2f} MB | {r['peak_rss_mb']:.0f} |")
            else:
                lines.append(f"| {model} | {backend} | skipped: {r['skipped']} | | | | | | | |")
    for model, entry in report["ratios"].items():
        for key, value in entry.items():
            lines.append(f"\n{model} {key}: {value:.2f}")
    return "\n".join(lines) + "\n"


CAR_ACT_DIR = Path("artifacts/act_car")


def make_car_act(out_dir: Path, data: str) -> Path:
    """A randomly initialised ACT checkpoint at the car configuration, stats from real drives."""
    from edge_inference.models.act import ACTConfig, ACTInferenceModule
    from edge_inference.models.act.checkpoint import save_act

    kind, _, location = data.partition(":")
    actions = np.asarray([[0.0, 0.3], [0.5, 0.2], [-0.5, 0.4]])  # fallback spread when no tubs
    if kind == "donkey":
        from edge_inference.tools.import_tub import ImportSummary, read_tub

        records = [r for tub in location.split(",") for r in read_tub(Path(tub), ImportSummary())]
        if records:
            actions = np.asarray([[r.angle, r.throttle] for r in records])
    config = ACTConfig(image_size=(360, 640), chunk_size=32, n_action_steps=32, n_encoder_layers=4,
                       n_decoder_layers=1, use_vae=False)
    moments = {"mean": actions.mean(0), "std": actions.std(0) + 1e-3}
    stats = {config.image_feature: {"mean": np.array([0.485, 0.456, 0.406]), "std": np.array([0.229, 0.224, 0.225])},
             "observation.state": moments, "action": moments}
    save_act(ACTInferenceModule(config, stats).eval(), config, stats, out_dir,
             {"provenance": "random initialisation for benchmarking latency only; not a driving policy"})
    return out_dir


def prepare_act(model_dir: Path, data: str, quantize_int8: bool = True) -> None:
    """Export and quantize the ACT checkpoint when ``model.onnx`` / ``model.int8.onnx`` are missing
    (``quantize_int8=False``: export only)."""
    from edge_inference.tools import export, quantize

    def call(module, argv):
        parser = argparse.ArgumentParser()
        module.register(parser.add_subparsers())
        args = parser.parse_args(argv)
        if args.func(args) != 0:
            raise SystemExit(f"error: `edge-inference {' '.join(argv)}` failed")

    if not (model_dir / "model.onnx").is_file():
        call(export, ["export", "--model", str(model_dir), "--dataset", data])
    if quantize_int8 and not (model_dir / "model.int8.onnx").is_file():
        call(quantize, ["quantize", "--model", str(model_dir), "--dataset", data, "--num-calibration", "200",
                        "--num-eval", "50"])
    if not (model_dir / "calibration.npz").is_file():  # torch-int8 calibrates on these at load
        from edge_inference.calibration_samples import act_donkey_samples
        from edge_inference.onnx_export import read_onnx_metadata

        kind, _, location = data.partition(":")
        if kind == "donkey":
            samples = act_donkey_samples(location.split(","), read_onnx_metadata(model_dir / "model.onnx"), 50)
            np.savez(model_dir / "calibration.npz", **samples)


def run(args) -> int:
    if args.pipeline:
        from .bench_pipeline import run as run_pipeline
        return run_pipeline(args)
    if args.worker:
        serve(json.loads(args.worker))
        return 0
    if args.runs < 200:
        print("error: --runs must be >= 200 for stable p99")
        return 2
    if args.act_levers:
        from .bench_levers import run as run_levers
        if args.json == "artifacts/bench.json":
            args.json = "artifacts/act_levers.json"
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
            from edge_inference.onnx_export import read_onnx_metadata

            meta = read_onnx_metadata(meta_file)
            report["config"][name] = {k: meta[k] for k in ("inputs", "chunk_size", "image_size") if k in meta}
            checkpoint = model_dir / "config.json"
            if name == "act" and checkpoint.is_file():  # state the architecture the numbers are for
                arch = json.loads(checkpoint.read_text())
                report["config"][name] |= {k: arch[k] for k in ("vision_backbone", "dim_model", "n_encoder_layers",
                                                                 "n_decoder_layers", "dim_feedforward") if k in arch}
    report["ratios"] = ratios(report["models"])
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    table = markdown_table(report)
    Path(args.markdown or out.with_suffix(".md")).write_text(table)
    print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_inference.tools.bench``: the worker entry (independent of the CLI registry)."""
    parser = argparse.ArgumentParser(prog="edge-inference")
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
