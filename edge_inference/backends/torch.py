"""PyTorch fp32 eager backend on a checkpoint directory (FSQ or ACT).

Torch is imported here only: the robot can run without it on the onnxruntime/hailo
backends.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_inference.backends import BackendError, check_inputs


def act_runtime(config: Any, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """What a runner needs to know about an ACT checkpoint, from its config + metadata."""
    meta = dict(metadata or {})

    def pick(*names, default=None):
        for name in names:
            if name in meta and meta[name] is not None:
                return meta[name]
            if hasattr(config, name) and getattr(config, name) is not None:
                return getattr(config, name)
        return default

    image_size = pick("image_size")
    if image_size is None:
        raise BackendError("ACT checkpoint does not state its image size (config/metadata 'image_size')")
    chunk = int(pick("chunk_size"))
    state_dim = int(pick("state_dim", default=2))
    action_dim = int(pick("action_dim", default=2))
    fps = pick("fps", default=None)
    dt = float(pick("dt", default=1.0 / float(fps) if fps else 1.0 / 30.0))
    names = list(pick("action_names", default=["steering", "throttle"][:action_dim]))
    runtime = {"image_size": [int(image_size[0]), int(image_size[1])], "chunk_size": chunk, "state_dim": state_dim,
               "action_dim": action_dim, "dt": dt, "action_names": names}
    runtime["image_fit"] = str(pick("image_fit", default="resize"))
    # what the policy node must know about the training data and LeRobot's chunk execution
    for key in ("fps_source", "state_names", "n_action_steps", "temporal_ensemble_coeff"):
        if meta.get(key) is not None:
            runtime[key] = meta[key]
    action_std = pick("action_std")  # dataset std of the actions: the quantization gate's scale
    if action_std is not None:
        runtime["action_std"] = [float(v) for v in np.asarray(action_std, dtype=np.float64).reshape(-1)]
    return runtime


def load_torch_model(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Checkpoint directory -> (eval module taking inputs in metadata order, metadata)."""
    from edge_inference.deploy import onnx_export

    path = Path(path)
    config_file = path / "config.json" if path.is_dir() else None
    kind = json.loads(config_file.read_text()).get("type") if config_file and config_file.is_file() else None
    if kind == "fsq_classifier":
        from edge_inference.models.fsq.checkpoint import WEIGHTS_NAME, load_fsq
        from edge_inference.models.fsq.modeling_fsq import FSQInferenceModule

        model, config = load_fsq(path)
        return FSQInferenceModule(model).eval(), onnx_export.fsq_metadata(
            config, onnx_export.file_sha256(path / WEIGHTS_NAME))
    try:
        from edge_inference.models.act.checkpoint import load_act
    except ImportError as err:
        raise BackendError(f"{path} is not an FSQ checkpoint and the ACT model is unavailable: {err}") from err
    module, config, metadata = load_act(path)
    weights = path / "model.safetensors" if path.is_dir() else path
    digest = onnx_export.file_sha256(weights) if weights.is_file() else ""
    return module.eval(), onnx_export.act_metadata(act_runtime(config, metadata), digest)


class TorchBackend:
    def __init__(self, model_file: Path, name: str = "torch", threads: int = 1,
                 module: torch.nn.Module | None = None, metadata: dict[str, Any] | None = None, **_: object):
        """``module``/``metadata`` let tools wrap an in-memory model; otherwise ``model_file`` is loaded."""
        torch.set_num_threads(int(threads))
        self.name = name
        self.model_file = Path(model_file)
        if module is None:
            module, metadata = load_torch_model(self.model_file)
        self.module = module.eval()
        self.metadata = dict(metadata or {})
        self.input_shapes = dict(self.metadata["inputs"])
        self.input_names = list(self.input_shapes)

    @torch.inference_mode()
    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        checked = check_inputs(inputs, self.input_shapes)
        outputs = self.module(*(torch.from_numpy(checked[n]) for n in self.input_names))
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        return [o.float().numpy() for o in outputs]

    def close(self) -> None:
        self.module = None
