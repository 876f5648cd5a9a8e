"""FSQ checkpoint directory: ``config.json`` (FSQConfig) + ``model.safetensors``.

A bad checkpoint fails with a message naming the missing/unexpected keys or shapes.
"""
from __future__ import annotations

import json
from pathlib import Path

from edge_inference.core.errors import EdgeInferenceError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(EdgeInferenceError, ValueError):
    """A checkpoint that cannot be loaded into the configured model."""


def read_fsq_config(path: str | Path):
    """Read the FSQConfig of a checkpoint directory (no torch needed)."""
    from edge_inference.models.fsq.configuration_fsq import FSQConfig

    path = Path(path)
    config_file = path / CONFIG_NAME if path.is_dir() else path.with_name(CONFIG_NAME)
    if not config_file.is_file():
        raise CheckpointError(f"FSQ checkpoint {path} has no {CONFIG_NAME}")
    try:
        return FSQConfig.from_dict(json.loads(config_file.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise CheckpointError(f"bad FSQ config {config_file}: {err}") from err


def save_fsq(model, path: str | Path) -> Path:
    """Write ``model`` (FSQClassifier) and its config into directory ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_NAME).write_text(model.config.to_json())
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / WEIGHTS_NAME), metadata={"format": "pt", "type": "fsq_classifier"})
    return path


def load_fsq(path: str | Path):
    """Load an FSQ checkpoint directory -> (FSQClassifier in eval mode, FSQConfig)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from edge_inference.models.fsq.modeling_fsq import FSQClassifier

    path = Path(path)
    config = read_fsq_config(path)
    weights = (path if path.is_dir() else path.parent) / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"FSQ checkpoint {path} has no {WEIGHTS_NAME}")
    model = FSQClassifier(config)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:  # a damaged file, named
        raise CheckpointError(f"{weights}: not a readable safetensors file (corrupt or truncated?): {err}") from err
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"FSQ checkpoint {weights}: missing keys {missing}, unexpected keys {unexpected}")
    bad_shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if bad_shapes:
        raise CheckpointError(f"FSQ checkpoint {weights} shape mismatch: " + "; ".join(bad_shapes))
    model.load_state_dict(state)
    return model.eval(), config
