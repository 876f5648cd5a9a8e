"""One registry of inference backends, chosen by name from configuration.

Every backend runs an exported model with the same call contract, so runners and
nodes never branch on the backend type:

    backend = create_backend(name, model_path, **opts)
    backend.input_names      # e.g. ["imu"] or ["image", "state"]
    backend.metadata         # the model's own metadata (class names, chunk, dt, ...)
    outputs = backend.run({"imu": x})   # list of float32 arrays in metadata["outputs"] order
    backend.close()

``model_path`` is a model file or a model directory; in a directory each backend
takes its own file (``MODEL_FILES``). Modules are imported on demand: the
``onnxruntime`` and ``hailo`` backends never import torch.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_inference.core.errors import EdgeInferenceError

#: The stand-in: numpy rules in place of a model (``backends/heuristic.py``), for a graph with no
#: trained model yet. It needs no model file and works at the runner level (image/window in,
#: chunk/probabilities out), so ``create_policy_runner`` / ``create_behavior_runner`` build it.
HEURISTIC = "heuristic"

#: backend name -> "module:factory"
BACKENDS = {
    "torch": "edge_inference.backends.torch:TorchBackend",
    "torch-int8": "edge_inference.backends.torch_int8:TorchInt8Backend",
    "onnxruntime": "edge_inference.backends.onnxruntime:OnnxRuntimeBackend",
    "onnxruntime-int8": "edge_inference.backends.onnxruntime:OnnxRuntimeBackend",
    "hailo": "edge_inference.backends.hailo:HailoBackend",
}

#: File each backend takes from a model directory (torch backends take the directory).
MODEL_FILES = {
    "torch": None,
    "torch-int8": None,
    "onnxruntime": "model.onnx",
    "onnxruntime-int8": "model.int8.onnx",
    "hailo": "model.hef",
}


#: Every name a node's ``backend`` parameter accepts.
BACKEND_NAMES = (*BACKENDS, HEURISTIC)


class BackendError(EdgeInferenceError, RuntimeError):
    """A backend that cannot be created or run (missing library, file, bad input)."""


class Backend(Protocol):
    name: str
    model_file: Path
    metadata: dict[str, Any]
    input_names: list[str]

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...


def resolve_model_file(model_path: str | Path, backend: str) -> Path:
    """The file (or checkpoint directory) ``backend`` loads for ``model_path``."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    path = Path(model_path)
    if not path.exists():
        raise BackendError(f"model path {path} does not exist")
    wanted = MODEL_FILES[backend]
    if path.is_dir() and wanted is not None:
        path = path / wanted
        if not path.exists():
            raise BackendError(f"{model_path} has no {wanted} for backend {backend!r} "
                               "(run `edge-inference export` / `quantize` / `hailo-compile` first)")
    return path


def create_backend(name: str, model_path: str | Path, **opts: Any) -> Backend:
    """Instantiate backend ``name`` on ``model_path``; ``opts`` go to the backend (threads, ...)."""
    if name == HEURISTIC:
        raise BackendError(f"{HEURISTIC!r} runs no model file: build it with create_policy_runner / "
                           "create_behavior_runner")
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    module_name, factory = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackendError(f"backend {name!r} needs a library that is not installed: {err}") from err
    return getattr(module, factory)(resolve_model_file(model_path, name), name=name, **opts)


def check_inputs(inputs: dict[str, np.ndarray], shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """Float32, C-contiguous inputs with exactly the model's static shapes, or a clear error."""
    missing = sorted(set(shapes) - set(inputs))
    if missing:
        raise BackendError(f"missing model inputs {missing}; the model takes {sorted(shapes)}")
    checked = {}
    for name, shape in shapes.items():
        value = np.ascontiguousarray(inputs[name], dtype=np.float32)
        if list(value.shape) != list(shape):
            raise BackendError(f"input {name!r} has shape {tuple(value.shape)}, the model needs {tuple(shape)}")
        checked[name] = value
    return checked
