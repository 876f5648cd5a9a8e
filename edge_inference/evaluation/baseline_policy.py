"""A small learned yardstick for the driving policy, trained on a bag.

Why: "steering MAE vs a constant-mean baseline" says little on its own when the
teleop is bang-bang and strongly autocorrelated. This trains the project's small
CNN chunk policy (`sim/chunk_policy.py`, ACT's inference contract: image (1,3,H,W)
in [0,1], state (1,2) = previous command -> actions (1, chunk, 2)) on a recorded
drive read by the ACT dataset loader, and exports it as ONNX with the runner
metadata, so `edge-inference eval` scores it through the same runner, scheduler
and metrics as ACT. `--no-state` trains an image-only variant that shows what the
camera alone contributes.

    python -m edge_inference.evaluation.baseline_policy --train-bag artifacts/bags/donkey_data \\
        --out models/donkey_cnn_baseline [--no-state]

Torch is imported only here (training), never on the robot path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

IMAGE_SIZE = (60, 80)  # (H, W) the camera frames are resized to
CHUNK = 8


def load_training_data(bag: str | Path) -> dict[str, np.ndarray]:
    """Frames (N, H, W, 3), state (previous command), actions and segments, via the ACT loader.

    The trainer holds out the last segment for validation.
    """
    from edge_inference.models.act.dataset import load_bag

    demos = load_bag(bag, IMAGE_SIZE)
    if len(demos) < CHUNK + 2:
        raise ValueError(f"{bag}: only {len(demos)} frames with commands")
    segments = demos.segments.copy()
    if segments.max() == segments.min():  # one continuous drive: hold out its last 10% for validation
        segments[int(0.9 * len(segments)):] += 1
    return {"images": demos.images, "states": demos.states.astype(np.float32),
            "actions": demos.actions.astype(np.float32), "episode_index": segments, "fps": demos.fps}


def main(argv: list[str] | None = None) -> int:
    import torch

    from edge_inference.deploy.onnx_export import export_act_onnx, file_sha256
    from edge_inference.sim.chunk_policy import ChunkPolicyConfig, runtime_metadata, train

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-bag", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--no-state", dest="use_state", action="store_false")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_training_data(args.train_bag)
    print(f"{len(data['images'])} training frames from {args.train_bag} at {data['fps']:.1f} fps")
    cfg = ChunkPolicyConfig(chunk_size=CHUNK, image_size=IMAGE_SIZE, fps=float(data["fps"]), epochs=args.epochs,
                            use_state=args.use_state)
    model, train_metrics = train(data, cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    runtime = runtime_metadata(cfg, data["actions"].std(axis=0))
    sample = {"image": data["images"][:8].transpose(0, 3, 1, 2).astype(np.float32) / 255.0,
              "state": data["states"][:8]}
    digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())).hexdigest()
    result = export_act_onnx(model, runtime, args.out / "model.onnx", weights_hash=digest, real_inputs=sample)
    card = {"what": "small CNN chunk policy (sim_cnn architecture), a learned yardstick for ACT (not ACT)",
            "use_state": args.use_state, "train_bag": Path(args.train_bag).name, "frames": int(len(data["images"])),
            "epochs": args.epochs, "onnx_bytes": result.size_bytes, "onnx_sha256": file_sha256(result.path),
            **train_metrics, **{k: v for k, v in runtime.items() if k != "config"}}
    (args.out / "training.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(f"wrote {result.path} (parity: max abs diff {result.max_abs_diff_random:.2e} on random inputs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
