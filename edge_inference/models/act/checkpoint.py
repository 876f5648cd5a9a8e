"""ACT checkpoints: load LeRobot's formats, save LeRobot v0.4 format (which is also ours).

Loads
  (a) a LeRobot v0.4+ pretrained directory: ``config.json``, ``model.safetensors``,
      ``policy_preprocessor.json`` + ``policy_preprocessor_step_<i>_normalizer_processor.safetensors``,
      ``policy_postprocessor.json`` + ``..._unnormalizer_processor.safetensors`` (stats keys
      ``observation.state.mean`` etc.);
  (b) an older LeRobot directory (<= v0.3): the stats are buffers inside ``model.safetensors``
      (``normalize_inputs.buffer_observation_state.mean``, ``normalize_targets.buffer_action.std``,
      ``unnormalize_outputs.buffer_action.mean``; feature dots written as underscores);
  (c) this project's format = (a) plus ``edge_inference.json`` (action names, fps, how the
      model was trained). LeRobot ignores the extra file, so our checkpoints load there too.

A LeRobot policy directory does not state the rate of its demonstrations (the time
between two actions of a chunk) nor the names of its state features. They are taken
from ``edge_inference.json``, else from LeRobot's ``train_config.json`` beside the
weights (``env.fps``; ``dataset.root`` or ``$HF_LEROBOT_HOME/<dataset.repo_id>`` ->
``meta/info.json``: ``fps``, ``features["observation.state"].names``), else the fps
falls back to ACTConfig's default with a ``CheckpointWarning`` (the policy node's
``policy_fps`` parameter overrides it on the robot).

Every failure is a ``CheckpointError`` naming the file and the missing/unexpected keys,
the mismatched shapes or the missing feature. The VAE encoder (``model.vae_encoder*``)
is only used in training: its weights are accepted and dropped at load.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_inference.core.errors import EdgeInferenceError
from edge_inference.models.act.configuration_act import ACTION, OBS_STATE, ACTConfig
from edge_inference.models.act.modeling_act import ACT, NORM_EPS, ACTInferenceModule

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PROJECT_NAME = "edge_inference.json"
TRAIN_CONFIG_NAME = "train_config.json"  # LeRobot's TrainPipelineConfig, saved beside the policy
PREPROCESSOR_NAME = "policy_preprocessor.json"
POSTPROCESSOR_NAME = "policy_postprocessor.json"
NORMALIZER_FILE = "policy_preprocessor_step_3_normalizer_processor.safetensors"  # LeRobot's ACT step order
UNNORMALIZER_FILE = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
LEGACY_STATS_PREFIXES = ("normalize_inputs.buffer_", "normalize_targets.buffer_", "unnormalize_outputs.buffer_")
VAE_PREFIX = "model.vae_encoder"
KEY_LIST_LIMIT = 12  # keys named in an error message before "... and N more"

Stats = dict[str, dict[str, np.ndarray]]  # feature -> {"mean", "std", "min", "max", ...}


class CheckpointError(EdgeInferenceError, ValueError):
    """A checkpoint that cannot be used, with the reason (file, keys, shapes, features)."""


class CheckpointWarning(UserWarning):
    """A checkpoint that loads but leaves something to a default (the demonstrations' fps)."""


def lerobot_training_metadata(path: Path) -> dict[str, Any]:
    """fps and state names of the data a LeRobot policy was trained on, where LeRobot recorded them.

    Returns {"fps", "fps_source", "state_names"} for what was found (possibly nothing).
    """
    train_file = path / TRAIN_CONFIG_NAME
    if not train_file.is_file():
        return {}
    train = _read_json(train_file)
    found: dict[str, Any] = {}
    env = train.get("env") if isinstance(train.get("env"), dict) else {}
    if env.get("fps"):
        found.update(fps=float(env["fps"]), fps_source=f"{TRAIN_CONFIG_NAME} env.fps")
    dataset = train.get("dataset") if isinstance(train.get("dataset"), dict) else {}
    roots = []
    if dataset.get("root"):
        roots.append(Path(str(dataset["root"])).expanduser())
    if isinstance(dataset.get("repo_id"), str):
        home = os.environ.get("HF_LEROBOT_HOME") or os.path.join(os.environ.get("HF_HOME", "~/.cache/huggingface"),
                                                                 "lerobot")
        roots.append(Path(home).expanduser() / dataset["repo_id"])
    info_file = next((r / "meta" / "info.json" for r in roots if (r / "meta" / "info.json").is_file()), None)
    if info_file is not None:
        info = _read_json(info_file)
        if info.get("fps") and "fps" not in found:
            found.update(fps=float(info["fps"]), fps_source=str(info_file))
        state = (info.get("features") or {}).get(OBS_STATE) or {}
        names = state.get("names")
        if isinstance(names, dict):  # older datasets: {"motors": [...]}
            names = next(iter(names.values()), None)
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            found["state_names"] = list(names)
    return found


# ------------------------------------------------------------------------------------------ load
def load_act(path: str | Path) -> tuple[ACTInferenceModule, ACTConfig, dict[str, Any]]:
    """Checkpoint directory -> (eval ACTInferenceModule, config, metadata).

    ``metadata``: format ("lerobot" | "lerobot-legacy" | "edge_inference"), image_size,
    chunk_size, state_dim, action_dim, action_names, fps, dt, action_std, image_fit, and
    what ``edge_inference.json`` adds (training provenance).
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint directory (expected {CONFIG_NAME} + {WEIGHTS_NAME})")
    raw_config = _read_json(path / CONFIG_NAME)
    project = _read_json(path / PROJECT_NAME) if (path / PROJECT_NAME).is_file() else {}
    training = {} if "fps" in project else lerobot_training_metadata(path)
    try:
        config = ACTConfig.from_lerobot_dict(raw_config, {**training, **project})
    except (ValueError, TypeError, NotImplementedError) as err:
        raise CheckpointError(f"{path / CONFIG_NAME}: {err}") from err
    fps_source = PROJECT_NAME if "fps" in project else training.get("fps_source", "default")
    if fps_source == "default":
        warnings.warn(f"{path}: the checkpoint does not say at what rate its demonstrations were recorded "
                      f"(no {PROJECT_NAME}, no fps in {TRAIN_CONFIG_NAME} or the dataset's meta/info.json): "
                      f"assuming {config.fps:g} fps, {config.dt * 1e3:.1f} ms between chunk actions; set the "
                      f"policy node's policy_fps parameter to the dataset's fps", CheckpointWarning, stacklevel=2)
    weights = read_safetensors(path / WEIGHTS_NAME)

    if (path / PREPROCESSOR_NAME).is_file():
        stats, norm_map = _processor_stats(path)
        fmt = "edge_inference" if project else "lerobot"
    elif any(k.startswith(LEGACY_STATS_PREFIXES) for k in weights):
        stats, norm_map = legacy_stats(weights, config), None
        fmt = "lerobot-legacy"
    else:
        raise CheckpointError(f"{path}: no normalization statistics: neither {PREPROCESSOR_NAME} (LeRobot v0.4+) "
                              f"nor normalize_inputs.* buffers in {WEIGHTS_NAME} (older LeRobot)")
    if norm_map:
        config.normalization_mapping = {**config.normalization_mapping, **norm_map}
    _check_features(stats, config, path)

    weights = {k: v for k, v in weights.items() if not k.startswith(LEGACY_STATS_PREFIXES + (VAE_PREFIX,))}
    try:
        module = ACTInferenceModule(replace(config, use_vae=False), stats)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from err
    load_weights(module, weights, path / WEIGHTS_NAME)
    module.eval()

    metadata = {"format": fmt, "image_size": list(config.image_size), "chunk_size": config.chunk_size,
                "state_dim": config.state_dim, "action_dim": config.action_dim,
                "action_names": list(config.action_names), "fps": config.fps, "dt": config.dt,
                "fps_source": fps_source, "image_fit": project.get("image_fit", "resize"),
                # LeRobot's select_action executes n_action_steps per chunk, or ensembles every step:
                # the policy node's scheduler defaults (parameters set by the user win)
                "n_action_steps": config.n_action_steps, "temporal_ensemble_coeff": config.temporal_ensemble_coeff}
    state_names = project.get("state_names") or training.get("state_names")
    if state_names:
        if len(state_names) != config.state_dim:
            raise CheckpointError(f"{path}: {len(state_names)} observation.state names {state_names} for a state "
                                  f"of size {config.state_dim}")
        metadata["state_names"] = list(state_names)
    if ACTION in stats and "std" in stats[ACTION]:
        metadata["action_std"] = [float(v) for v in np.asarray(stats[ACTION]["std"]).reshape(-1)]
    metadata.update({k: v for k, v in project.items() if k not in metadata})
    return module, config, metadata


def read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file as float32 (bf16/fp16 checkpoints included)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not file.is_file():
        raise CheckpointError(f"{file}: missing")
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{file}: not a readable safetensors file (corrupt or truncated?): {err}") from err
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def load_weights(module: ACTInferenceModule, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Strict load with one error naming every missing/unexpected key and shape mismatch."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    wrong = [f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in weights and weights[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing keys {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_some(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches {_some(wrong)} (does config.json match the weights? e.g. chunk_size, "
                        f"dim_model, n_encoder_layers, state/action shapes)")
    if problems:
        raise CheckpointError(f"{source} does not fit the ACT built from its config: " + "; ".join(problems))
    module.load_state_dict(weights, strict=True)


def legacy_stats(weights: dict[str, torch.Tensor], config: ACTConfig) -> Stats:
    """Stats buffers of older LeRobot checkpoints -> {feature: {stat: array}}.

    Feature names were written with dots as underscores; they are matched against
    the config's feature names rather than guessed back.
    """
    names = {f.replace(".", "_"): f for f in (config.image_feature, OBS_STATE, ACTION)}
    stats: Stats = {}
    for key, tensor in weights.items():
        prefix = next((p for p in LEGACY_STATS_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            continue
        buffer_name, _, stat = key[len(prefix):].rpartition(".")
        feature = names.get(buffer_name)
        if feature is None:
            raise CheckpointError(f"{WEIGHTS_NAME} has stats buffer {key!r} for a feature the config does not "
                                  f"declare (features: {sorted(names.values())})")
        stats.setdefault(feature, {})[stat] = tensor.numpy()
    return stats


def _processor_stats(path: Path) -> tuple[Stats, dict[str, str] | None]:
    """Stats and norm_map from the (un)normalizer steps of LeRobot's processor pipelines."""
    stats: Stats = {}
    norm_map: dict[str, str] | None = None
    for name in (PREPROCESSOR_NAME, POSTPROCESSOR_NAME):
        file = path / name
        if not file.is_file():
            continue
        pipeline = _read_json(file)
        steps = pipeline.get("steps")
        if not isinstance(steps, list):
            raise CheckpointError(f"{file}: no 'steps' list (not a LeRobot processor pipeline)")
        for step in steps:
            if not isinstance(step, dict) or "state_file" not in step:
                continue
            kind = str(step.get("registry_name", step.get("class", "")))
            if "normalizer" not in kind:
                continue
            norm_map = norm_map or (step.get("config") or {}).get("norm_map")
            for key, tensor in read_safetensors(path / step["state_file"]).items():
                feature, _, stat = key.rpartition(".")
                stats.setdefault(feature, {})[stat] = tensor.numpy()
    if not stats:
        raise CheckpointError(f"{path}: {PREPROCESSOR_NAME} has no normalizer step with a state_file (no stats)")
    if norm_map:
        norm_map = {str(k).rsplit(".", 1)[-1].upper(): str(v).rsplit(".", 1)[-1].upper() for k, v in norm_map.items()}
    return stats, norm_map


def _check_features(stats: Stats, config: ACTConfig, path: Path) -> None:
    modes = config.normalization_mapping
    needed = [(config.image_feature, modes.get("VISUAL", "MEAN_STD")), (OBS_STATE, modes.get("STATE", "MEAN_STD")),
              (ACTION, modes.get("ACTION", "MEAN_STD"))]
    missing = [f for f, mode in needed if mode != "IDENTITY" and f not in stats]
    if missing:
        raise CheckpointError(f"{path}: no normalization stats for feature(s) {missing}; the stats cover "
                              f"{sorted(stats)} (feature names must match config.json)")


def _read_json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise CheckpointError(f"{file}: missing")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(data).__name__}")
    return data


def _some(items: list[str]) -> str:
    shown = ", ".join(items[:KEY_LIST_LIMIT])
    return f"[{shown}{f', ... and {len(items) - KEY_LIST_LIMIT} more' if len(items) > KEY_LIST_LIMIT else ''}]"


# ------------------------------------------------------------------------------------------ save
def save_act(module_or_policy: nn.Module, config: ACTConfig, stats: Stats, out_dir: str | Path,
             extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write a LeRobot v0.4 policy directory (+ ``edge_inference.json``) that ``load_act`` and LeRobot read.

    ``module_or_policy``: an ``ACTInferenceModule`` (or anything whose state dict has
    ``model.*`` keys) or a bare ``ACT`` network. ``stats``: {feature: {stat: array}} for
    the image feature (shape (3,1,1) per stat, as LeRobot's dataset stats), observation.state
    and action.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = module_or_policy.state_dict()
    if isinstance(module_or_policy, ACT):
        state = {f"model.{k}": v for k, v in state.items()}
    weights = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()
               if k.startswith("model.") and not k.endswith("num_batches_tracked")}  # frozen BN has none
    if not weights:
        raise CheckpointError("nothing to save: the module has no 'model.*' weights "
                              "(pass an ACTInferenceModule or ACT)")
    has_vae = any(k.startswith(VAE_PREFIX) for k in weights)
    lerobot_config = replace(config, use_vae=config.use_vae and has_vae).to_lerobot_dict()
    _check_features(stats, config, out)
    flat_stats = {}
    for feature, values in stats.items():
        for stat, value in values.items():
            arr = np.asarray(value, dtype=np.float32)
            if feature == config.image_feature and arr.ndim == 1:
                arr = arr.reshape(-1, 1, 1)  # LeRobot's per-channel image stats are (3, 1, 1)
            flat_stats[f"{feature}.{stat}"] = torch.from_numpy(np.ascontiguousarray(arr))

    save_file(weights, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    (out / CONFIG_NAME).write_text(json.dumps(lerobot_config, indent=2) + "\n")
    features = {**lerobot_config["input_features"], **lerobot_config["output_features"]}
    norm_map = dict(config.normalization_mapping)
    normalizer = {"eps": NORM_EPS, "features": features, "norm_map": norm_map}
    pre = {"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        {"registry_name": "normalizer_processor", "config": normalizer, "state_file": NORMALIZER_FILE}]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor", "config": {"eps": NORM_EPS,
                                                                "features": lerobot_config["output_features"],
                                                                "norm_map": norm_map},
         "state_file": UNNORMALIZER_FILE},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}
    save_file(flat_stats, str(out / NORMALIZER_FILE))
    save_file(flat_stats, str(out / UNNORMALIZER_FILE))
    (out / PREPROCESSOR_NAME).write_text(json.dumps(pre, indent=2) + "\n")
    (out / POSTPROCESSOR_NAME).write_text(json.dumps(post, indent=2) + "\n")
    project = {**config.to_project_dict(), **(extra_metadata or {})}
    (out / PROJECT_NAME).write_text(json.dumps(project, indent=2) + "\n")
    return out
