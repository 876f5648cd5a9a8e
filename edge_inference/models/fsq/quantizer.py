"""Finite Scalar Quantization (Mentzer et al. 2023, "FSQ: VQ-VAE Made Simple").

Each latent dimension is bounded to L_i levels and rounded with a straight-through
gradient; there is no code book to learn, so it cannot collapse like VQ.
"""
from __future__ import annotations

import torch
from torch import nn


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """Round forward, identity backward (straight-through estimator)."""
    return z + (torch.round(z) - z).detach()


class FSQ(nn.Module):
    """(B, D) latent -> (zhat (B, D) in [-1, 1], level values (B, D) in [0, L-1])."""

    def __init__(self, levels: list[int], eps: float = 1e-3):
        super().__init__()
        levels_t = torch.tensor(levels, dtype=torch.float32)
        half_l = (levels_t - 1) * (1 - eps) / 2  # (D,)
        offset = torch.where(levels_t % 2 == 0, torch.tensor(0.5), torch.tensor(0.0))
        self.levels = list(levels)
        self.register_buffer("half_l", half_l, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        # The paper's reference code: shift = tan(offset / half_l) (atanh in some ports).
        self.register_buffer("shift", torch.tan(offset / half_l), persistent=False)
        self.register_buffer("half_width", torch.floor(levels_t / 2), persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash z so rounding yields exactly L levels per dimension."""
        return torch.tanh(z + self.shift) * self.half_l - self.offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quantized = round_ste(self.bound(z))  # (B, D) integers in [-L//2, (L-1)//2 ...]
        zhat = quantized / self.half_width  # (B, D) in [-1, 1]
        level_values = quantized + self.half_width  # (B, D) in [0, L-1]
        return zhat, level_values
