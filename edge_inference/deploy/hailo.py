"""Helpers of the Hailo Dataflow Compiler flow: the HEF sidecar metadata, end-node names, NHWC calibration."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def hailo_sidecar(npu_metadata: dict[str, Any], host_model: str | None) -> dict[str, Any]:
    """``model.hef.json``: the NPU part's ONNX metadata (whole-model inputs/outputs + split)."""
    sidecar = {k: v for k, v in npu_metadata.items() if k != "part"}
    if host_model:
        sidecar["host_model"] = host_model
    return sidecar


def producer_nodes(onnx_path: Path, tensors: list[str]) -> list[str]:
    """Names of the ONNX nodes that produce ``tensors``: the DFC's end nodes are node names."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    found = {out: node.name for node in graph.node for out in node.output if out in tensors}
    missing = [t for t in tensors if t not in found]
    if missing:
        raise ValueError(f"{onnx_path}: no node produces {missing}")
    return [found[t] for t in tensors]


def to_nhwc(batch: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C): the Dataflow Compiler calibrates in NHWC."""
    return np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if batch.ndim == 4 else batch
