"""A small CNN action-chunk policy: the demo's stand-in when no ACT can be trained here in reasonable time.

Same contract as the ACT inference module, so export, quantize, the runners and
policy_node treat it exactly like an ACT: ``forward(image (B,3,H,W) float [0,1]
RGB, state (B,2) applied [steering, throttle]) -> actions (B, chunk, 2)``, exported
with the ACT metadata (``model: act``, plus ``architecture: sim_cnn`` so nobody
mistakes it for one). Why it exists: a ResNet-18 ACT needs roughly 1 GFLOP per
training sample at 72x128, which is tens of minutes per epoch on this project's
shared 2-core CI machine; this network needs ~10 MFLOP, trains in minutes and is
~0.4 MB, so it can be checked in. Torch is imported here; import lazily.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

ARCHITECTURE = "sim_cnn"


@dataclass
class ChunkPolicyConfig:
    chunk_size: int = 16
    image_size: tuple[int, int] = (72, 128)   # (H, W) model input
    channels: tuple[int, ...] = (24, 32, 48, 64)
    hidden: int = 128
    fps: float = 30.0
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    frame_stride: int = 1                     # use every n-th frame (faster training)
    seed: int = 0
    use_state: bool = True                    # False: image only (the state input is multiplied by 0)


class ChunkPolicy(nn.Module):
    """Strided conv encoder -> flattened features (+ state) -> MLP -> (chunk, 2) actions in [-1, 1]."""

    def __init__(self, cfg: ChunkPolicyConfig):
        super().__init__()
        layers, c_in = [], 3
        for i, c in enumerate(cfg.channels):
            k = 5 if i < 2 else 3
            layers += [nn.Conv2d(c_in, c, k, 2, k // 2), nn.ReLU()]
            c_in = c
        # a 1x1 squeeze then flatten keeps *where* the lane is (static shapes: exports to ONNX/Hailo)
        self.encoder = nn.Sequential(*layers, nn.Conv2d(c_in, 16, 1), nn.ReLU(), nn.Flatten())  # (B, 16*h*w)
        with torch.no_grad():
            n_feats = self.encoder(torch.zeros(1, 3, *cfg.image_size)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_feats + 2, cfg.hidden), nn.ReLU(),
                                  nn.Linear(cfg.hidden, cfg.chunk_size * 2))
        self.chunk_size = cfg.chunk_size
        self.use_state = cfg.use_state

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(image)                                    # (B, 16*h*w)
        state = state if self.use_state else state * 0.0               # stays a graph input when exported
        out = self.head(torch.cat([feats, state], 1))                  # (B, chunk*2)
        return torch.tanh(out).view(-1, self.chunk_size, 2)            # (B, chunk, 2) in [-1, 1]


def chunk_targets(actions: np.ndarray, episode_index: np.ndarray, chunk: int) -> np.ndarray:
    """(N, 2) actions -> (N, chunk, 2): the next ``chunk`` actions of the same episode (last one repeated)."""
    n = len(actions)
    idx = np.minimum(np.arange(n)[:, None] + np.arange(chunk)[None], n - 1)
    for k in range(1, chunk):
        crossed = episode_index[idx[:, k]] != episode_index
        idx[crossed, k] = idx[crossed, k - 1]
    return actions[idx]


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2
    h, w = size
    if images.shape[1:3] == (h, w):
        return images
    return np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in images])


def train(demos: dict[str, np.ndarray], cfg: ChunkPolicyConfig, log=print) -> tuple[ChunkPolicy, dict]:
    """L1 on the action chunk (like ACT without the VAE). Returns the model and training metrics."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ep = demos["episode_index"]
    targets = chunk_targets(demos["actions"].astype(np.float32), ep, cfg.chunk_size)
    keep = np.arange(0, len(ep), cfg.frame_stride)
    val_ep = int(ep.max())  # the last episode is held out
    train_i, val_i = keep[ep[keep] != val_ep], keep[ep[keep] == val_ep]
    images = torch.from_numpy(resize_images(demos["images"], cfg.image_size)).permute(0, 3, 1, 2)  # uint8
    states = torch.from_numpy(demos["states"].astype(np.float32))
    y = torch.from_numpy(targets)
    model = ChunkPolicy(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * (len(train_i) // cfg.batch_size + 1))
    t0 = time.monotonic()

    def val_l1() -> float:
        model.eval()
        with torch.no_grad():
            errs = [(model(images[b].float() / 255, states[b]) - y[b]).abs().mean().item() * len(b)
                    for b in np.array_split(val_i, max(1, len(val_i) // 256))]
        model.train()
        return float(sum(errs) / max(1, len(val_i)))

    for epoch in range(cfg.epochs):
        order = rng.permutation(train_i)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            loss = (model(images[b].float() / 255, states[b]) - y[b]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
        log(f"epoch {epoch + 1}/{cfg.epochs}: train L1 {total / len(order):.4f}  held-out episode L1 {val_l1():.4f}"
            f"  ({time.monotonic() - t0:.0f} s)")
    model.eval()
    metrics = {"train_frames": int(len(train_i)), "val_frames": int(len(val_i)), "val_l1": val_l1(),
               "train_seconds": round(time.monotonic() - t0, 1),
               "parameters": int(sum(p.numel() for p in model.parameters()))}
    return model, metrics


def runtime_metadata(cfg: ChunkPolicyConfig, action_std: np.ndarray) -> dict:
    """The ACT runtime fields the runners read, plus what this model really is."""
    return {"image_size": list(cfg.image_size), "chunk_size": cfg.chunk_size, "state_dim": 2, "action_dim": 2,
            "dt": 1.0 / cfg.fps, "action_names": ["steering", "throttle"],
            "action_std": [float(v) for v in action_std], "architecture": ARCHITECTURE,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}}
