"""A small learned yardstick for the driving policy: CNN (image + state) -> action chunk.

Why: "steering MAE vs a constant-mean baseline" says little on its own when the
teleop is bang-bang and strongly autocorrelated. This trains, on a training bag,
a small convolutional policy with the ACT inference contract (image (1,3,H,W) in
[0,1], state (1,2) = previous command -> actions (1, chunk, 2)) and exports it as
ONNX with the runner metadata, so `edge-inference eval` scores it through the
same runner, scheduler and metrics as ACT. `--no-state` trains an image-only
variant that shows what the camera alone contributes.

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
    """Frames, state (previous command) and chunk targets, from the same loader ACT trains with."""
    from edge_inference.models.act.dataset import load_bag

    demos = load_bag(bag, IMAGE_SIZE)
    if len(demos) < CHUNK + 2:
        raise ValueError(f"{bag}: only {len(demos)} frames with commands")
    idx, _ = demos.chunk_index(CHUNK)  # past a segment's end the chunk repeats its last command
    return {"images": np.ascontiguousarray(demos.images.transpose(0, 3, 1, 2)),  # (N, 3, H, W) uint8
            "state": demos.states.astype(np.float32), "chunks": demos.actions[idx].astype(np.float32),
            "segments": demos.segments}


def build_model(use_state: bool = True):
    import torch
    from torch import nn

    class CnnChunkPolicy(nn.Module):
        """Conv stem -> pooled features (+ state) -> MLP -> (chunk, 2) actions in [-1, 1]."""

        def __init__(self):
            super().__init__()
            self.use_state = use_state

            def block(cin, cout):
                return [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

            # 60x80 -> 30x40 -> 15x20 -> 8x10 -> 4x5; keep the layout: where the track is matters
            self.backbone = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), *block(64, 32),
                                          nn.Flatten())  # (B, 32*4*5)
            self.head = nn.Sequential(nn.Linear(640 + 2, 128), nn.ReLU(), nn.Dropout(0.2),
                                      nn.Linear(128, CHUNK * 2))

        def forward(self, image, state):
            feat = self.backbone(image)  # (B, 640)
            state = state if self.use_state else state * 0.0  # still an input of the exported graph
            out = self.head(torch.cat([feat, state], dim=1))  # (B, CHUNK*2)
            return torch.tanh(out).reshape(-1, CHUNK, 2)  # (B, CHUNK, 2) normalized actions

    return CnnChunkPolicy()


def train(data: dict[str, np.ndarray], use_state: bool, epochs: int, seed: int = 0, log=print):
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(use_state)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    n = len(data["images"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * ((n + 63) // 64))
    images = torch.from_numpy(data["images"])
    state = torch.from_numpy(data["state"])
    chunks = torch.from_numpy(data["chunks"])
    for epoch in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for start in range(0, n, 64):
            b = order[start:start + 64]
            x = images[b].float() / 255.0
            s = state[b]
            y = chunks[b]
            if rng.random() < 0.5:  # mirror: the track turns mostly one way; steering flips with the image
                x = torch.flip(x, dims=[3])
                s = s * torch.tensor([-1.0, 1.0])
                y = y * torch.tensor([-1.0, 1.0])
            loss = torch.nn.functional.l1_loss(model(x, s), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        log(f"epoch {epoch + 1}/{epochs}: L1 {total / n:.4f}")
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    import torch

    from edge_inference.onnx_export import export_act_onnx

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-bag", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--no-state", dest="use_state", action="store_false")
    p.add_argument("--dt", type=float, default=0.05, help="s between actions (the drive's frame period)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_training_data(args.train_bag)
    print(f"{len(data['images'])} training frames from {args.train_bag}")
    model = train(data, args.use_state, args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights.values())).hexdigest()
    runtime = {"image_size": list(IMAGE_SIZE), "chunk_size": CHUNK, "state_dim": 2, "action_dim": 2,
               "dt": args.dt, "action_names": ["steering", "throttle"], "image_fit": "resize"}
    sample = {"image": data["images"][:8].astype(np.float32) / 255.0, "state": data["state"][:8]}
    result = export_act_onnx(model, runtime, args.out / "model.onnx", weights_hash=digest, real_inputs=sample)
    card = {"what": "CNN chunk policy, a learned yardstick for ACT (not ACT)", "use_state": args.use_state,
            "train_bag": Path(args.train_bag).name, "frames": int(len(data["images"])), "epochs": args.epochs,
            "onnx_bytes": result.size_bytes, **runtime}
    (args.out / "training.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out / 'model.onnx'} (parity: max abs diff {result.max_abs_diff_random:.2e} random inputs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
