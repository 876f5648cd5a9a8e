"""FSQ code arithmetic in numpy (no torch: used on the robot).

Code book health (usage, perplexity) is ``evaluation.metrics.code_usage``.

A quantized latent is a vector of integer levels q_i in [0, L_i - 1]; its code index
is sum_i q_i * basis_i with basis = [1, cumprod(L[:-1])] (Mentzer et al. 2023).
"""
from __future__ import annotations

import numpy as np


def code_basis(levels: list[int]) -> np.ndarray:
    """(D,) int64 mixed-radix basis: [1, L0, L0*L1, ...]."""
    return np.concatenate([[1], np.cumprod(np.asarray(levels[:-1], dtype=np.int64))]).astype(np.int64)


def levels_to_index(level_values: np.ndarray, levels: list[int]) -> np.ndarray:
    """(..., D) integer levels (float or int) -> (...,) int64 code indices."""
    q = np.rint(np.asarray(level_values)).astype(np.int64)
    high = np.asarray(levels, dtype=np.int64) - 1
    if np.any(q < 0) or np.any(q > high):
        raise ValueError(f"FSQ level values out of range [0, L-1] for levels {levels}")
    return q @ code_basis(levels)


def index_to_levels(index: np.ndarray, levels: list[int]) -> np.ndarray:
    """(...,) code indices -> (..., D) integer levels; inverse of ``levels_to_index``."""
    index = np.asarray(index, dtype=np.int64)
    return (index[..., None] // code_basis(levels)) % np.asarray(levels, dtype=np.int64)
