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


def register(sub) -> None:
    p = sub.add_parser("train-sim-policy", help="train the small CNN chunk policy on sim demonstrations (+ONNX)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="demos.npz from `edge-inference gen-demos`")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--chunk-size", type=int, default=16)
    p.add_argument("--image-size", type=int, nargs=2, default=(72, 128), metavar=("H", "W"))
    p.add_argument("--frame-stride", type=int, default=1, help="train on every n-th frame")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from edge_inference.deploy.onnx_export import export_act_onnx, file_sha256
    from edge_inference.sim.chunk_policy import ChunkPolicyConfig, resize_images, runtime_metadata, train

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_file():
        print(f"train-sim-policy: {data} not found (run `edge-inference gen-demos` first)")
        return 2
    with np.load(data) as d:
        missing = {"images", "states", "actions", "episode_index"} - set(d.files)
        if missing:
            print(f"train-sim-policy: {data} lacks arrays {sorted(missing)}")
            return 2
        demos = {k: d[k] for k in ("images", "states", "actions", "episode_index")}
        fps = float(d["fps"]) if "fps" in d.files else 30.0
    cfg = ChunkPolicyConfig(chunk_size=args.chunk_size, image_size=tuple(args.image_size), fps=fps,
                            epochs=args.epochs, frame_stride=args.frame_stride, seed=args.seed)
    model, metrics = train(demos, cfg, log=lambda s: print(s, flush=True))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    runtime = runtime_metadata(cfg, demos["actions"].std(0))
    (out / "config.json").write_text(json.dumps({"type": "sim_chunk_policy", **runtime}, indent=2))
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(demos["states"]), min(256, len(demos["states"])), replace=False))
    images = resize_images(demos["images"][idx], cfg.image_size).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    samples = {"image": images, "state": demos["states"][idx].astype(np.float32)}
    np.savez(out / "calibration.npz", **samples)
    result = export_act_onnx(model, runtime, out / "model.onnx", file_sha256(out / "model.safetensors"), samples)
    metrics.update(onnx_bytes=result.size_bytes, onnx_max_abs_diff_random=result.max_abs_diff_random,
                   onnx_max_abs_diff_real=result.max_abs_diff_real)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return 0
