"""Model runners used by the nodes: raw sensor data in, model outputs out, any backend.

The model file/directory carries its own metadata (ACT: chunk, dt, action names,
image size; FSQ: class names, channel layout, window, normalization), so a node
only passes ``model_path`` and ``backend`` and never branches on the backend type.
No torch import here: torch loads only when a torch backend is chosen.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_inference.backends import HEURISTIC, Backend, BackendError, create_backend
from edge_inference.core.errors import EdgeInferenceError
from edge_inference.core.resources import resolve_model_path

DEFAULT_BACKEND = "onnxruntime"


class ModelKindError(EdgeInferenceError, ValueError):
    """The model at ``model_path`` is not the kind of model the runner needs."""


def _model_hash(backend: Backend) -> str:
    digest = backend.metadata.get("source_sha256") or ""
    return f"{digest[:16]}:{backend.name}" if digest else backend.name


def _expect_kind(backend: Backend, kind: str) -> None:
    found = backend.metadata.get("model")
    if found != kind:
        backend.close()
        raise ModelKindError(f"{backend.model_file} holds a {found!r} model, expected {kind!r}")


def _check_graph(backend: Backend, inputs: dict[str, list[int]], outputs: list[list[int]]) -> None:
    """The metadata's shapes against the model's real inputs/outputs (where the backend knows them):
    a model whose metadata disagrees with its graph fails at load, not in the middle of a run."""
    problems = []
    real_in = getattr(backend, "input_shapes", None)
    if real_in is not None:
        for name, shape in inputs.items():
            if name not in real_in:
                problems.append(f"no input {name!r} (inputs: {sorted(real_in)})")
            elif list(real_in[name]) != list(shape):
                problems.append(f"input {name!r} is {list(real_in[name])}, the metadata says {shape}")
    real_out = list(getattr(backend, "output_shapes", {}).values())
    for got, want in zip(real_out, outputs):
        if all(isinstance(d, int) for d in got) and int(np.prod(got)) != int(np.prod(want)):
            problems.append(f"output {got} does not hold {want} values as the metadata says")
    if problems:
        backend.close()
        raise ModelKindError(f"{backend.model_file}: metadata disagrees with the model graph: " + "; ".join(problems))


class PolicyRunner:
    """ACT: ``predict(image_rgb (H, W, 3) uint8, state (S,) float32) -> (chunk, A) float32``."""

    def __init__(self, backend: Backend):
        from edge_inference.core.preprocess import ImagePreprocessor, PreprocessConfig

        _expect_kind(backend, "act")
        meta = backend.metadata
        self.backend = backend
        self.metadata = meta  # the node reads state_names, fps_source, n_action_steps from it
        try:
            self.chunk_size = int(meta["chunk_size"])
            self.action_dim = int(meta["action_dim"])
            self.state_dim = int(meta["state_dim"])
            self.dt = float(meta["dt"])  # s between consecutive actions of a chunk
            self.action_names = list(meta["action_names"])
            self.image_height, self.image_width = (int(v) for v in meta["image_size"])
        except (KeyError, TypeError, ValueError) as err:
            backend.close()
            raise ModelKindError(f"{backend.model_file}: policy metadata incomplete or malformed ({err!r})") from err
        self.backend_name = backend.name
        self.model_hash = _model_hash(backend)
        _check_graph(backend, {"image": [1, 3, self.image_height, self.image_width], "state": [1, self.state_dim]},
                     [[1, self.chunk_size, self.action_dim]])
        self._preprocess = ImagePreprocessor(PreprocessConfig(width=self.image_width, height=self.image_height,
                                                              fit=meta.get("image_fit", "resize")))

    def predict(self, image_rgb: np.ndarray, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32).reshape(-1)
        if state.size != self.state_dim:
            raise ValueError(f"policy state must have {self.state_dim} values, got {state.size}")
        if not np.all(np.isfinite(state)):
            raise ValueError(f"policy state is not finite: {state}")
        image = self._preprocess(image_rgb)[None]  # (1, 3, H, W) float32 in [0, 1]
        (actions,) = self.backend.run({"image": image, "state": state[None]})[:1]  # (1, chunk, A)
        actions = np.asarray(actions, dtype=np.float32).reshape(self.chunk_size, self.action_dim)
        if not np.all(np.isfinite(actions)):
            raise ValueError("policy produced non-finite actions")
        return actions

    def close(self) -> None:
        self.backend.close()


class BehaviorRunner:
    """FSQ: ``predict(window (T, 9) raw [accel m/s², gyro rad/s, mag T]) -> (probs (N,), code int)``."""

    def __init__(self, backend: Backend):
        from edge_inference.models.fsq.configuration_fsq import FSQConfig

        _expect_kind(backend, "fsq_classifier")
        self.backend = backend
        self.config = FSQConfig.from_dict(backend.metadata["config"])
        if not self.config.feature_mean:
            raise ModelKindError(f"{backend.model_file}: FSQ config has no feature normalization")
        self.class_names = list(self.config.class_names)
        _check_graph(backend, {"imu": list(self.config.input_shape)}, [[1, len(self.class_names)]])
        self.window_length = self.config.window_length
        self.sample_rate_hz = self.config.sample_rate_hz
        self.backend_name = backend.name
        self.model_hash = _model_hash(backend)
        self._mean = np.asarray(self.config.feature_mean, dtype=np.float32)
        self._std = np.asarray(self.config.feature_std, dtype=np.float32)

    def model_input(self, window: np.ndarray) -> np.ndarray:
        """(T, 9) raw window -> (1, C, H, T) normalized model input."""
        from edge_inference.models.fsq.features import window_to_input

        c = self.config
        return window_to_input(window, c.feature_layout, c.sample_rate_hz, c.window_length, self._mean,
                               self._std, c.gravity_cutoff_hz, c.rows)

    def predict(self, window: np.ndarray) -> tuple[np.ndarray, int]:
        from edge_inference.models.fsq.codes import levels_to_index

        probs, levels = self.backend.run({"imu": self.model_input(window)})[:2]
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        if probs.size != len(self.class_names) or not np.all(np.isfinite(probs)):
            raise ValueError(f"behavior model produced bad probabilities {probs}")
        return probs, int(levels_to_index(np.asarray(levels).reshape(-1), self.config.levels))

    def close(self) -> None:
        self.backend.close()


def _need_model(model_path: str | Path, backend: str, kind: str) -> None:
    if not str(model_path):
        raise BackendError(f"{kind} backend {backend!r} needs model_path (a model directory); "
                           f"backend {HEURISTIC!r} is the built-in stand-in that needs none")


def create_policy_runner(model_path: str | Path, backend: str = DEFAULT_BACKEND, *,
                         heuristic: dict | None = None, **opts: Any) -> PolicyRunner:
    """The policy runner of ``backend``; ``heuristic`` = options of the stand-in (chunk_size, dt)."""
    if backend == HEURISTIC:
        from edge_inference.backends.heuristic import HeuristicPolicyRunner
        return HeuristicPolicyRunner(**(heuristic or {}))
    _need_model(model_path, backend, "policy")
    return PolicyRunner(create_backend(backend, resolve_model_path(model_path), **opts))


def create_behavior_runner(model_path: str | Path, backend: str = DEFAULT_BACKEND, *,
                           heuristic: dict | None = None, **opts: Any) -> BehaviorRunner:
    """The behavior runner of ``backend``; ``heuristic`` = options of the stand-in (class_names, window)."""
    if backend == HEURISTIC:
        from edge_inference.backends.heuristic import HeuristicBehaviorRunner
        return HeuristicBehaviorRunner(**(heuristic or {}))
    _need_model(model_path, backend, "behavior")
    return BehaviorRunner(create_backend(backend, resolve_model_path(model_path), **opts))
