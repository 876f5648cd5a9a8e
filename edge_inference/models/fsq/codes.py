"""FSQ code arithmetic and code book health, in numpy (no torch: used on the robot).

A quantized latent is a vector of integer levels q_i in [0, L_i - 1]; its code index
is sum_i q_i * basis_i with basis = [1, cumprod(L[:-1])] (Mentzer et al. 2023).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass
class CodeUsage:
    """How much of the code book a set of windows uses."""

    codebook_size: int
    used_codes: int
    usage_fraction: float
    perplexity: float  # exp(entropy) of the code histogram; = used_codes when uniform
    top_codes: list[tuple[int, int]]  # (code, count), most used first

    def to_dict(self) -> dict:
        return {"codebook_size": self.codebook_size, "used_codes": self.used_codes,
                "usage_fraction": self.usage_fraction, "perplexity": self.perplexity,
                "top_codes": [[int(c), int(n)] for c, n in self.top_codes]}


def code_usage(codes: np.ndarray, levels: list[int], top: int = 10) -> CodeUsage:
    """Usage statistics of code indices ``codes`` (N,) over the code book of ``levels``."""
    size = math.prod(levels)
    codes = np.asarray(codes, dtype=np.int64).ravel()
    if codes.size == 0:
        return CodeUsage(size, 0, 0.0, 0.0, [])
    values, counts = np.unique(codes, return_counts=True)
    p = counts / counts.sum()
    perplexity = float(np.exp(-(p * np.log(p)).sum()))
    order = np.argsort(-counts)[:top]
    return CodeUsage(size, int(values.size), float(values.size / size), perplexity,
                     [(int(values[i]), int(counts[i])) for i in order])
