"""Small torch models for the export and torch-backend tests (needs torch; see model_fixtures).

- ``TinyACT``: an nn.Module with the ACT inference signature (image (B,3,H,W) in [0,1],
  state (B,S) raw -> actions (B, chunk, A) raw): a conv stem with BatchNorm, a
  transformer encoder layer and a linear action head. Stands in until tests need
  the real ACT (that has its own tests).
- ``tiny_fsq_checkpoint``: an untrained FSQ classifier saved in the real checkpoint format.
"""
from __future__ import annotations

from pathlib import Path

import torch
from model_fixtures import ACT_RUNTIME
from torch import nn


class TinyACT(nn.Module):
    def __init__(self, chunk: int = 8, action_dim: int = 2, state_dim: int = 2, dim: int = 32):
        super().__init__()
        self.chunk, self.action_dim = chunk, action_dim
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, dim, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU())
        self.state_proj = nn.Linear(state_dim, dim)
        self.qkv = nn.Linear(dim, 3 * dim)  # one self-attention layer, written out (exports as MatMul)
        self.ffn = nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, dim))
        self.queries = nn.Parameter(torch.randn(chunk, dim) * 0.1)
        self.action_head = nn.Linear(dim, action_dim)
        self.register_buffer("action_mean", torch.tensor([0.0, 0.3]))
        self.register_buffer("action_std", torch.tensor([0.5, 0.1]))
        # Non-trivial BatchNorm statistics, so folding them is observable.
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(image).flatten(2).transpose(1, 2)  # (B, HW, D)
        tokens = torch.cat([self.state_proj(state)[:, None], feat], dim=1)  # (B, 1+HW, D)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)  # (B, T, D) each
        attn = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)  # (B, T, T)
        hidden = tokens + attn @ v
        hidden = hidden + self.ffn(hidden)
        memory = hidden.mean(dim=1, keepdim=True)  # (B, 1, D)
        actions = self.action_head(self.queries[None] + memory)  # (B, chunk, A) normalized
        return actions * self.action_std + self.action_mean


def tiny_act(seed: int = 0) -> TinyACT:
    torch.manual_seed(seed)
    return TinyACT(ACT_RUNTIME["chunk_size"], ACT_RUNTIME["action_dim"], ACT_RUNTIME["state_dim"]).eval()


def tiny_fsq_checkpoint(path: Path, class_names=("still", "walk", "turn"), seed: int = 0) -> Path:
    from edge_inference.models.fsq.checkpoint import save_fsq
    from edge_inference.models.fsq.configuration_fsq import FSQConfig
    from edge_inference.models.fsq.modeling_fsq import FSQClassifier

    torch.manual_seed(seed)
    config = FSQConfig(class_names=list(class_names), conv_channels=[8, 8], head_hidden=16,
                       feature_mean=[[0.0, 0.0]] * 9, feature_std=[[1.0, 1.0]] * 9)
    model = FSQClassifier(config).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return save_fsq(model, path)
