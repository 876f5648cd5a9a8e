"""Where the demo's models are: the checked-in ones and the cache of models built on request."""
from __future__ import annotations

from pathlib import Path

CHECKED_IN = Path(__file__).resolve().parents[2] / "models" / "sim_demo"


DEFAULT_CACHE = Path("artifacts/demo_models")


def _complete(d: Path) -> bool:
    return (d / "model.onnx").is_file() and (d / "model.int8.onnx").is_file()


def find_model(cache: Path, kind: str) -> Path | None:
    """``kind`` ("act" | "fsq") with fp32 and int8 ONNX: the cache first, then the checked-in set."""
    return next((d / kind for d in (cache, CHECKED_IN) if _complete(d / kind)), None)
