"""Model latency benchmark: each backend in its own worker process (peak RSS, no torch leakage),
interleaved batches, percentiles and ratios."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ALL_BACKENDS = ["torch", "torch-int8", "onnxruntime", "onnxruntime-int8", "hailo"]


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
    from edge_inference.backends.runners import BehaviorRunner, PolicyRunner

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


def peak_rss_mb() -> float:
    """Peak resident memory of this process's program (MB): ``VmHWM``, the high-water mark of its address space.

    Not ``ru_maxrss``: Linux carries that across fork + exec, so a worker started by a driver that had
    grown (quantizing the car ACT in-process) reported the driver's 1.7 GB for every backend.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
    if spec["cpus"]:
        os.sched_setaffinity(0, spec["cpus"])
    from edge_inference.backends import create_backend

    opts = {}
    if spec.get("tuning") is not None:  # an ONNX Runtime session lever (bench --act-levers)
        from edge_inference.backends.onnxruntime import SessionTuning

        opts["tuning"] = SessionTuning(**spec["tuning"])
    started = time.perf_counter()
    backend = create_backend(spec["backend"], spec["model"], threads=spec["threads"], **opts)
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
                      "peak_rss_mb": peak_rss_mb(),
                      "torch_imported": "torch" in sys.modules, "model_file": str(backend.model_file),
                      "tuning": asdict(backend.tuning) if hasattr(backend, "tuning") else None}), flush=True)
    backend.close()


class Worker:
    """Driver side of one ``serve`` process."""

    def __init__(self, model_dir: Path, backend: str, args, tuning: dict | None = None):
        spec = {"model": str(model_dir), "backend": backend, "threads": args.threads, "warmup": args.warmup,
                "cpus": [int(c) for c in args.cpus.split(",") if c.strip()], "tuning": tuning}
        cmd = [sys.executable, "-m", "edge_inference.evaluation.model_bench", json.dumps(spec)]
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
    """A randomly initialised ACT checkpoint at the car configuration, stats from real drives.

    Seeded: the int8 gate (NMAE vs fp32) depends on the weights, so every machine gets the same model.
    """
    import torch

    from edge_inference.models.act import ACTConfig, ACTInferenceModule
    from edge_inference.models.act.checkpoint import save_act

    kind, _, location = data.partition(":")
    actions = np.asarray([[0.0, 0.3], [0.5, 0.2], [-0.5, 0.4]])  # fallback spread when no tubs
    if kind == "donkey":
        from edge_inference.datasets.donkey_tub import ImportSummary, read_tub

        records = [r for tub in location.split(",") for r in read_tub(Path(tub), ImportSummary())]
        if records:
            actions = np.asarray([[r.angle, r.throttle] for r in records])
    config = ACTConfig(image_size=(360, 640), chunk_size=32, n_action_steps=32, n_encoder_layers=4,
                       n_decoder_layers=1, use_vae=False)
    moments = {"mean": actions.mean(0), "std": actions.std(0) + 1e-3}
    stats = {config.image_feature: {"mean": np.array([0.485, 0.456, 0.406]), "std": np.array([0.229, 0.224, 0.225])},
             "observation.state": moments, "action": moments}
    torch.manual_seed(0)
    save_act(ACTInferenceModule(config, stats).eval(), config, stats, out_dir,
             {"provenance": "random initialisation for benchmarking latency only; not a driving policy"})
    return out_dir


if __name__ == "__main__":  # a worker process of ``Worker``
    serve(json.loads(sys.argv[1]))
