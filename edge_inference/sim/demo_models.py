"""The demo's models: where they are (checked in, or cached) and the recipes that build them.

Each recipe runs the same `edge-inference` commands a user would (gen-demos -> train -> export
-> quantize), so the demo also exercises the training path.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edge_inference.core.errors import CheckFailed

CHECKED_IN = Path(__file__).resolve().parents[2] / "models" / "sim_demo"


DEFAULT_CACHE = Path("artifacts/demo_models")


def _complete(d: Path) -> bool:
    return (d / "model.onnx").is_file() and (d / "model.int8.onnx").is_file()


def find_model(cache: Path, kind: str) -> Path | None:
    """``kind`` ("act" | "fsq") with fp32 and int8 ONNX: the cache first, then the checked-in set."""
    return next((d / kind for d in (cache, CHECKED_IN) if _complete(d / kind)), None)


def act_tools_available() -> bool:
    """train-act and export need torch (the dev machine has it; the robot does not)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _cli(argv: list[str]) -> None:
    from edge_inference.cli import main
    print("$ edge-inference " + " ".join(argv), flush=True)
    rc = main(argv)
    if rc != 0:
        raise CheckFailed(f"building the demo models: `edge-inference {' '.join(argv)}` failed with exit code {rc}")


def fsq_samples(windows_npz: Path, fsq_dir: Path, out: Path, n: int = 1200, seed: int = 0) -> None:
    """FSQ quantization samples: model inputs 'imu' (N,9,2,T) + 'labels', shuffled over all drives.

    The train-fsq calibration file holds 256 windows; with 128 left to evaluate, one
    flipped window moves accuracy by 0.8 points against a 1-point gate. ~1000
    evaluation windows measure the int8 drop instead of its noise.
    """

    from edge_inference.backends.runners import create_behavior_runner
    runner = create_behavior_runner(fsq_dir, "onnxruntime")
    try:
        with np.load(windows_npz) as d:
            windows, labels = d["windows"], d["labels"]
        idx = np.random.default_rng(seed).permutation(len(windows))[:n]
        names = list(runner.class_names)
        imu = np.concatenate([runner.model_input(windows[i]) for i in idx]).astype(np.float32)
        np.savez(out, imu=imu, labels=np.array([names.index(str(labels[i])) for i in idx], np.int64))
    finally:
        runner.close()


def build_fsq(cache: Path) -> Path:
    """IMU windows from scripted sim drives -> train-fsq (+ONNX) -> int8 (about 30 s)."""

    from edge_inference.sim.demonstrations import imu_windows
    data, fsq = cache / "data", cache / "fsq"
    data.mkdir(parents=True, exist_ok=True)
    if fsq.exists():
        shutil.rmtree(fsq)
    print("demo: building the FSQ behavior model from simulated IMU drives ...", flush=True)
    np.savez_compressed(data / "imu_windows.npz", **imu_windows(n_drives=12))
    _cli(["train-fsq", "--data", str(data / "imu_windows.npz"), "--test-users", "10,11", "--epochs", "15",
          "--out", str(fsq), "--export"])
    fsq_samples(data / "imu_windows.npz", fsq, data / "fsq_samples.npz")
    _cli(["quantize", "--model", str(fsq), "--samples", str(data / "fsq_samples.npz"), "--num-calibration", "200"])
    return fsq


ACT_IMAGE = ("48", "64")  # H W: the backbone's cost scales with pixels; the sim track needs no more


def build_act(cache: Path, max_steps: int = 300, episodes: int = 8) -> Path:
    """Expert demonstrations -> train-act (small ACT, ResNet-18 backbone) -> export -> int8.

    Measured on the 2-core dev machine, idle: the whole build takes about 1 min (300 batch-32
    steps at 48x64: 0.2 s each); the int8 and fp32 models lap the oval and the bean track with 0
    off-track events, CTE mean 0.034 / 0.021 m. Its checkpoint asks for temporal ensembling
    (train-act's default), which drove this ACT best (docs/PERFORMANCE_NOTES_17.md).
    """
    data, act = cache / "data", cache / "act"
    if act.exists():
        shutil.rmtree(act)
    print("demo: building the ACT policy from simulated expert demonstrations (once, ~1-3 min) ...", flush=True)
    _cli(["gen-demos", "--out", str(data), "--episodes", str(episodes), "--seconds", "30",
          "--image-size", *ACT_IMAGE, "--bag-episodes", "0", "--imu-drives", "0"])
    _cli(["train-act", "--data", str(data / "demos.npz"), "--out", str(act), "--chunk-size", "16",
          "--image-size", *ACT_IMAGE, "--dim-model", "128", "--n-heads", "4", "--dim-feedforward", "512",
          "--n-encoder-layers", "2", "--n-decoder-layers", "1", "--epochs", "1",
          "--max-steps", str(max_steps),
          "--batch-size", "32", "--device", "auto"])
    _cli(["export", "--model", str(act), "--samples", str(act / "calibration.npz")])
    _cli(["quantize", "--model", str(act), "--samples", str(act / "calibration.npz")])
    return act


def build_policy_cnn(cache: Path) -> Path:
    """Expert demonstrations -> train-sim-policy (+ONNX) -> int8 (a few minutes on 2 cores)."""
    data, out = cache / "data", cache / "policy_cnn"
    if out.exists():
        shutil.rmtree(out)
    print("demo: building the CNN chunk policy from simulated expert demonstrations ...", flush=True)
    _cli(["gen-demos", "--out", str(data), "--episodes", "12", "--seconds", "40", "--bag-episodes", "0",
          "--imu-drives", "0"])
    _cli(["train-sim-policy", "--data", str(data / "demos.npz"), "--out", str(out), "--epochs", "8"])
    _cli(["quantize", "--model", str(out), "--samples", str(out / "calibration.npz")])
    return out
