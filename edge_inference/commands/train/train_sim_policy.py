"""`edge-inference train-sim-policy`: the small CNN chunk policy (ACT's I/O contract) on sim demonstrations.

The stand-in for the demo when no ACT can be trained in reasonable time on a CPU
(see ``edge_inference/sim/chunk_policy.py``). Writes into --out: ``model.safetensors``
+ ``config.json`` (torch weights), ``model.onnx`` (fp32, ACT metadata with
``architecture: sim_cnn``, parity-checked against torch), ``calibration.npz`` (real
inputs for `quantize`) and ``metrics.json``. Then run `edge-inference quantize
--model DIR --samples DIR/calibration.npz` for ``model.int8.onnx``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_inference.commands.arg_types import positive_int
from edge_inference.core.files import InputFileError, Staging, load_npz


def register(sub) -> None:
    p = sub.add_parser("train-sim-policy", help="train the small CNN chunk policy on sim demonstrations (+ONNX)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="demos.npz from `edge-inference gen-demos`")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=positive_int, default=6)
    p.add_argument("--chunk-size", type=positive_int, default=16)
    p.add_argument("--image-size", type=positive_int, nargs=2, default=(72, 128), metavar=("H", "W"))
    p.add_argument("--frame-stride", type=positive_int, default=1, help="train on every n-th frame")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    data = Path(args.data)
    if not data.is_file():
        raise InputFileError(f"demonstrations not found; run `edge-inference gen-demos` first ({data})")
    arrays = load_npz(data, required=("images", "states", "actions", "episode_index"), what="demonstrations")
    demos = {k: arrays[k] for k in ("images", "states", "actions", "episode_index")}
    fps = float(arrays["fps"]) if "fps" in arrays else 30.0
    lengths = {k: len(v) for k, v in demos.items()}
    if len(set(lengths.values())) != 1 or demos["images"].ndim != 4:
        raise InputFileError(f"demonstrations arrays disagree: lengths {lengths}, images {demos['images'].shape} "
                             f"(expected (N, H, W, 3)) ({data})")

    import numpy as np
    import torch
    from safetensors.torch import save_file

    from edge_inference.deploy.onnx_export import export_act_onnx, file_sha256
    from edge_inference.sim.chunk_policy import ChunkPolicyConfig, resize_images, runtime_metadata, train

    torch.set_num_threads(args.threads)
    cfg = ChunkPolicyConfig(chunk_size=args.chunk_size, image_size=tuple(args.image_size), fps=fps,
                            epochs=args.epochs, frame_stride=args.frame_stride, seed=args.seed)
    model, metrics = train(demos, cfg, log=lambda s: print(s, flush=True))
    with Staging(Path(args.out)) as stage:  # the previous model stays until this one passed its ONNX parity check
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(stage.path("model.safetensors")))
        runtime = runtime_metadata(cfg, demos["actions"].std(0))
        stage.path("config.json").write_text(json.dumps({"type": "sim_chunk_policy", **runtime}, indent=2))
        rng = np.random.default_rng(args.seed)
        idx = np.sort(rng.choice(len(demos["states"]), min(256, len(demos["states"])), replace=False))
        images = resize_images(demos["images"][idx], cfg.image_size).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        samples = {"image": images, "state": demos["states"][idx].astype(np.float32)}
        np.savez(stage.path("calibration.npz"), **samples)
        result = export_act_onnx(model, runtime, stage.path("model.onnx"), file_sha256(stage.path("model.safetensors")),
                                 samples)
        metrics.update(onnx_bytes=result.size_bytes, onnx_max_abs_diff_random=result.max_abs_diff_random,
                       onnx_max_abs_diff_real=result.max_abs_diff_real)
        stage.path("metrics.json").write_text(json.dumps(metrics, indent=2))
        stage.commit()
    print(json.dumps(metrics, indent=2))
    return 0
