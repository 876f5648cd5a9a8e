"""ACT checkpoints: LeRobot v0.4 dirs, older LeRobot dirs, our own format, and bad checkpoints.

The LeRobot-looking files are written here from LeRobot's naming rules (key templates
and shapes below, from lerobot/policies/act/modeling_act.py and torchvision's resnet18),
not with our save code, so a naming drift in the model fails these tests.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import HAS_TORCH, needs_torch

if HAS_TORCH:
    import torch
    from safetensors.torch import save_file

    from edge_inference.models.act import ACTConfig, ACTInferenceModule
    from edge_inference.models.act.checkpoint import CheckpointError, load_act, save_act

pytestmark = needs_torch

D, S, A, C, FF, ENC, VAE_LAYERS, LATENT = 32, 2, 2, 8, 64, 2, 1, 32
IMAGE_HW = (48, 64)
FEATURE = "observation.images.front"


def lerobot_act_keys(use_vae: bool = True) -> dict[str, tuple[int, ...]]:
    """LeRobot ACTPolicy.state_dict() key -> shape for resnet18, one decoder layer (tiny dims)."""
    keys: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, n: int) -> None:
        for stat in ("weight", "bias", "running_mean", "running_var"):  # FrozenBatchNorm2d: 4 buffers
            keys[f"{prefix}.{stat}"] = (n,)

    def mha(prefix: str) -> None:
        keys.update({f"{prefix}.in_proj_weight": (3 * D, D), f"{prefix}.in_proj_bias": (3 * D,),
                     f"{prefix}.out_proj.weight": (D, D), f"{prefix}.out_proj.bias": (D,)})

    def linear(prefix: str, n_in: int, n_out: int) -> None:
        keys.update({f"{prefix}.weight": (n_out, n_in), f"{prefix}.bias": (n_out,)})

    def norm(prefix: str) -> None:
        keys.update({f"{prefix}.weight": (D,), f"{prefix}.bias": (D,)})

    keys["model.backbone.conv1.weight"] = (64, 3, 7, 7)
    bn("model.backbone.bn1", 64)
    in_ch = 64
    for i, ch in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"model.backbone.layer{i}.{block}"
            keys[f"{p}.conv1.weight"] = (ch, in_ch if block == 0 else ch, 3, 3)
            bn(f"{p}.bn1", ch)
            keys[f"{p}.conv2.weight"] = (ch, ch, 3, 3)
            bn(f"{p}.bn2", ch)
            if block == 0 and i > 1:
                keys[f"{p}.downsample.0.weight"] = (ch, in_ch, 1, 1)
                bn(f"{p}.downsample.1", ch)
        in_ch = ch
    encoders = [("model.encoder", ENC)] + ([("model.vae_encoder", VAE_LAYERS)] if use_vae else [])
    for name, n in encoders:
        for i in range(n):
            p = f"{name}.layers.{i}"
            mha(f"{p}.self_attn")
            linear(f"{p}.linear1", D, FF)
            linear(f"{p}.linear2", FF, D)
            norm(f"{p}.norm1")
            norm(f"{p}.norm2")
    p = "model.decoder.layers.0"
    mha(f"{p}.self_attn")
    mha(f"{p}.multihead_attn")
    linear(f"{p}.linear1", D, FF)
    linear(f"{p}.linear2", FF, D)
    for n in ("norm1", "norm2", "norm3"):
        norm(f"{p}.{n}")
    norm("model.decoder.norm")
    linear("model.encoder_robot_state_input_proj", S, D)
    linear("model.encoder_latent_input_proj", LATENT, D)
    keys.update({"model.encoder_img_feat_input_proj.weight": (D, 512, 1, 1),
                 "model.encoder_img_feat_input_proj.bias": (D,),
                 "model.encoder_1d_feature_pos_embed.weight": (2, D), "model.decoder_pos_embed.weight": (C, D)})
    linear("model.action_head", D, A)
    if use_vae:
        keys["model.vae_encoder_cls_embed.weight"] = (1, D)
        linear("model.vae_encoder_robot_state_input_proj", S, D)
        linear("model.vae_encoder_action_input_proj", A, D)
        linear("model.vae_encoder_latent_output_proj", D, 2 * LATENT)
        keys["model.vae_encoder_pos_enc"] = (1, 2 + C, D)
    return keys


def lerobot_config(use_vae: bool = True) -> dict:
    """config.json as LeRobot v0.4 writes it for this tiny ACT."""
    return {"type": "act", "n_obs_steps": 1, "normalization_mapping": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD",
                                                                          "ACTION": "MEAN_STD"},
            "input_features": {FEATURE: {"type": "VISUAL", "shape": [3, *IMAGE_HW]},
                               "observation.state": {"type": "STATE", "shape": [S]}},
            "output_features": {"action": {"type": "ACTION", "shape": [A]}},
            "device": "cpu", "use_amp": False, "push_to_hub": False, "repo_id": None, "private": None,
            "tags": None, "license": None, "chunk_size": C, "n_action_steps": C, "vision_backbone": "resnet18",
            "pretrained_backbone_weights": "ResNet18_Weights.IMAGENET1K_V1",
            "replace_final_stride_with_dilation": False, "pre_norm": False, "dim_model": D, "n_heads": 4,
            "dim_feedforward": FF, "feedforward_activation": "relu", "n_encoder_layers": ENC, "n_decoder_layers": 1,
            "use_vae": use_vae, "latent_dim": LATENT, "n_vae_encoder_layers": VAE_LAYERS,
            "temporal_ensemble_coeff": None, "dropout": 0.1, "kl_weight": 10.0, "optimizer_lr": 1e-5,
            "optimizer_weight_decay": 1e-4, "optimizer_lr_backbone": 1e-5}


STATS = {f"{FEATURE}.mean": np.array([0.485, 0.456, 0.406]).reshape(3, 1, 1),
         f"{FEATURE}.std": np.array([0.229, 0.224, 0.225]).reshape(3, 1, 1),
         "observation.state.mean": np.array([0.1, 0.4]), "observation.state.std": np.array([0.5, 0.2]),
         "action.mean": np.array([-0.2, 0.35]), "action.std": np.array([0.6, 0.1])}


def random_weights(keys: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {k: torch.randn(*shape, generator=g) * 0.05 for k, shape in keys.items()}
    for k in out:
        if k.endswith("running_var"):
            out[k] = out[k].abs() + 0.5
    return out


def write_lerobot_dir(path: Path, use_vae: bool = True, stats: dict | None = None) -> dict[str, torch.Tensor]:
    """A LeRobot v0.4 pretrained_model directory, files laid out as LeRobot saves them."""
    path.mkdir(parents=True)
    weights = random_weights(lerobot_act_keys(use_vae))
    save_file(weights, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(lerobot_config(use_vae)))
    tensors = {k: torch.tensor(v, dtype=torch.float32) for k, v in (stats or STATS).items()}
    features = {**lerobot_config()["input_features"], **lerobot_config()["output_features"]}
    norm = {"eps": 1e-8, "features": features, "norm_map": lerobot_config()["normalization_mapping"]}
    (path / "policy_preprocessor.json").write_text(json.dumps({"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        {"registry_name": "normalizer_processor", "config": norm,
         "state_file": "policy_preprocessor_step_3_normalizer_processor.safetensors"}]}))
    save_file(tensors, str(path / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    (path / "policy_postprocessor.json").write_text(json.dumps({"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor", "config": norm,
         "state_file": "policy_postprocessor_step_0_unnormalizer_processor.safetensors"},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}))
    save_file(tensors, str(path / "policy_postprocessor_step_0_unnormalizer_processor.safetensors"))
    return weights


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, *IMAGE_HW, generator=g), torch.randn(2, S, generator=g)


def test_module_state_dict_has_exactly_lerobots_keys_and_shapes():
    config = ACTConfig.from_lerobot_dict(lerobot_config())
    state = ACTInferenceModule(config, {FEATURE: {"mean": np.zeros(3), "std": np.ones(3)},
                                        "observation.state": {"mean": np.zeros(2), "std": np.ones(2)},
                                        "action": {"mean": np.zeros(2), "std": np.ones(2)}}).state_dict()
    expected = lerobot_act_keys(use_vae=True)
    assert sorted(set(state) - set(expected)) == []
    assert sorted(set(expected) - set(state)) == []
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


def test_lerobot_v04_directory_loads_strictly_and_applies_its_stats(tmp_path):
    weights = write_lerobot_dir(tmp_path / "pretrained_model")
    module, config, meta = load_act(tmp_path / "pretrained_model")
    assert meta["format"] == "lerobot"
    assert (config.chunk_size, config.image_size, config.dim_model, config.use_vae) == (C, IMAGE_HW, D, True)
    assert not any(k.startswith("model.vae_encoder") for k in module.state_dict())  # accepted, then dropped
    assert torch.equal(module.state_dict()["model.action_head.bias"], weights["model.action_head.bias"])
    assert meta["action_std"] == pytest.approx([0.6, 0.1])
    image, state = inputs()
    out = module(image, state)
    assert out.shape == (2, C, A) and torch.isfinite(out).all()
    # Unnormalization comes from the postprocessor stats: zero the head and the output is the action mean.
    with torch.no_grad():
        module.model.action_head.weight.zero_()
        module.model.action_head.bias.zero_()
    assert torch.allclose(module(image, state), torch.tensor([-0.2, 0.35]).expand(2, C, A), atol=1e-6)


def test_state_normalization_matches_lerobot_formula(tmp_path):
    write_lerobot_dir(tmp_path / "ckpt")
    module, _, _ = load_act(tmp_path / "ckpt")
    state = torch.tensor([[0.6, 0.0]])
    expected = (state - torch.tensor([0.1, 0.4])) / (torch.tensor([0.5, 0.2]) + 1e-8)
    assert torch.allclose(module.normalize.state(state), expected)
    image = torch.full((1, 3, *IMAGE_HW), 0.5)
    mean, std = STATS[f"{FEATURE}.mean"].reshape(-1), STATS[f"{FEATURE}.std"].reshape(-1)
    assert torch.allclose(module.normalize.image(image)[0, :, 0, 0],
                          torch.tensor((0.5 - mean) / (std + 1e-8), dtype=torch.float32))


def test_older_lerobot_checkpoint_with_stats_buffers_in_the_weights(tmp_path):
    v04 = tmp_path / "v04"
    write_lerobot_dir(v04)
    old = tmp_path / "old"
    old.mkdir()
    weights = random_weights(lerobot_act_keys())
    buffers = {"normalize_inputs.buffer_observation_images_front": FEATURE,
               "normalize_inputs.buffer_observation_state": "observation.state",
               "normalize_targets.buffer_action": "action", "unnormalize_outputs.buffer_action": "action"}
    for prefix, feature in buffers.items():
        for stat in ("mean", "std"):
            weights[f"{prefix}.{stat}"] = torch.tensor(STATS[f"{feature}.{stat}"], dtype=torch.float32)
    save_file(weights, str(old / "model.safetensors"))
    (old / "config.json").write_text(json.dumps(lerobot_config()))
    module_old, _, meta = load_act(old)
    module_new, _, _ = load_act(v04)
    assert meta["format"] == "lerobot-legacy"
    image, state = inputs(1)
    assert torch.allclose(module_old(image, state), module_new(image, state), atol=1e-6)


def test_earliest_config_layout_with_input_shapes(tmp_path):
    write_lerobot_dir(tmp_path / "ckpt")
    raw = lerobot_config()
    del raw["input_features"], raw["output_features"]
    raw.update(input_shapes={FEATURE: [3, *IMAGE_HW], "observation.state": [S]}, output_shapes={"action": [A]})
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(raw))
    _, config, _ = load_act(tmp_path / "ckpt")
    assert config.image_feature == FEATURE and config.image_size == IMAGE_HW


def test_own_format_round_trip_keeps_outputs_and_metadata(tmp_path):
    config = ACTConfig(image_size=IMAGE_HW, chunk_size=C, n_action_steps=C, dim_model=D, n_heads=4,
                       dim_feedforward=FF, n_encoder_layers=ENC, use_vae=False, fps=19.5,
                       action_names=["steer", "gas"])
    stats = {FEATURE: {"mean": np.array([0.4, 0.4, 0.4]), "std": np.array([0.2, 0.25, 0.3])},
             "observation.state": {"mean": np.array([0.0, 0.3]), "std": np.array([0.4, 0.1])},
             "action": {"mean": np.array([0.05, 0.3]), "std": np.array([0.5, 0.1])}}
    torch.manual_seed(3)
    module = ACTInferenceModule(config, stats).eval()
    save_act(module, config, stats, tmp_path / "ours", extra_metadata={"data": ["tub"]})
    loaded, config2, meta = load_act(tmp_path / "ours")
    assert meta["format"] == "edge_inference" and meta["data"] == ["tub"]
    assert (meta["action_names"], meta["fps"], meta["dt"]) == (["steer", "gas"], 19.5, pytest.approx(1 / 19.5))
    assert config2.image_size == IMAGE_HW and config2.chunk_size == C
    image, state = inputs(2)
    assert torch.allclose(module(image, state), loaded(image, state), atol=1e-6)  # stats stored as float32
    written = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert written["type"] == "act" and written["input_features"][FEATURE]["shape"] == [3, *IMAGE_HW]
    assert "action_names" not in written  # LeRobot's config parser rejects unknown fields


# ----------------------------------------------------------------------------------- bad input
def test_corrupt_and_truncated_weights_are_reported(tmp_path):
    write_lerobot_dir(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*corrupt or truncated"):
        load_act(tmp_path / "ckpt")
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_act(tmp_path / "ckpt")


def test_missing_and_unexpected_keys_are_named(tmp_path):
    weights = write_lerobot_dir(tmp_path / "ckpt")
    del weights["model.decoder.norm.weight"]
    weights["model.extra_head.weight"] = torch.zeros(3)
    save_file(weights, str(tmp_path / "ckpt" / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_act(tmp_path / "ckpt")
    assert "missing keys [model.decoder.norm.weight]" in str(err.value)
    assert "unexpected keys [model.extra_head.weight]" in str(err.value)


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    write_lerobot_dir(tmp_path / "ckpt")
    raw = lerobot_config()
    raw["chunk_size"] = raw["n_action_steps"] = 16  # config no longer matches the weights
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError,
                       match=r"model.decoder_pos_embed.weight: checkpoint \(8, 32\) vs model \(16, 32\)"):
        load_act(tmp_path / "ckpt")


def test_stats_for_another_camera_name_the_feature(tmp_path):
    stats = {k.replace("images.front", "images.top"): v for k, v in STATS.items()}
    write_lerobot_dir(tmp_path / "ckpt", stats=stats)
    with pytest.raises(CheckpointError,
                       match=r"no normalization stats for feature\(s\) \['observation.images.front'\]"):
        load_act(tmp_path / "ckpt")


def test_config_problems_are_reported(tmp_path):
    write_lerobot_dir(tmp_path / "ckpt")
    cfg = tmp_path / "ckpt" / "config.json"
    raw = lerobot_config()
    raw["input_features"]["observation.images.side"] = {"type": "VISUAL", "shape": [3, *IMAGE_HW]}
    cfg.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="exactly one VISUAL"):
        load_act(tmp_path / "ckpt")
    raw = lerobot_config()
    del raw["input_features"]["observation.state"]
    cfg.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="lack 'observation.state'"):
        load_act(tmp_path / "ckpt")
    cfg.write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: not valid JSON"):
        load_act(tmp_path / "ckpt")
    cfg.unlink()
    with pytest.raises(CheckpointError, match="config.json: missing"):
        load_act(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_act(tmp_path / "nowhere")


def test_checkpoint_without_any_stats_is_rejected(tmp_path):
    write_lerobot_dir(tmp_path / "ckpt")
    for f in (tmp_path / "ckpt").glob("policy_*"):
        f.unlink()
    with pytest.raises(CheckpointError, match="no normalization statistics"):
        load_act(tmp_path / "ckpt")


# -- what a LeRobot directory leaves unsaid (issue 11) ----------------------------------------------------
def test_lerobot_directory_without_fps_warns_and_says_the_fps_is_a_default(tmp_path):
    from edge_inference.models.act.checkpoint import CheckpointWarning
    write_lerobot_dir(tmp_path / "ckpt")
    with pytest.warns(CheckpointWarning, match="assuming 20 fps.*policy_fps"):
        _, config, meta = load_act(tmp_path / "ckpt")
    assert meta["fps_source"] == "default" and meta["fps"] == 20.0
    assert meta["n_action_steps"] == C and meta["temporal_ensemble_coeff"] is None
    assert "state_names" not in meta


def test_fps_and_state_names_come_from_train_config_and_the_dataset_metadata(tmp_path, recwarn, monkeypatch):
    """LeRobot saves train_config.json beside the policy; the dataset's meta/info.json has fps and names."""
    write_lerobot_dir(tmp_path / "ckpt")
    dataset = tmp_path / "datasets" / "me" / "rc_drive"
    (dataset / "meta").mkdir(parents=True)
    (dataset / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v3.0", "fps": 10, "features": {
        "observation.state": {"dtype": "float32", "shape": [2], "names": ["throttle", "steering"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["steering", "throttle"]}}}))
    train = {"dataset": {"repo_id": "me/rc_drive", "root": str(dataset)}, "env": None, "policy": {"type": "act"}}
    (tmp_path / "ckpt" / "train_config.json").write_text(json.dumps(train))
    _, config, meta = load_act(tmp_path / "ckpt")
    assert config.fps == 10.0 and meta["dt"] == pytest.approx(0.1)
    assert meta["fps_source"].endswith("info.json") and meta["state_names"] == ["throttle", "steering"]
    assert not [w for w in recwarn if "fps" in str(w.message)]
    # a simulation env's fps wins over the dataset's; found through HF_LEROBOT_HOME when root is not saved
    train = {"dataset": {"repo_id": "me/rc_drive", "root": None}, "env": {"type": "gym", "fps": 15}}
    (tmp_path / "ckpt" / "train_config.json").write_text(json.dumps(train))
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "datasets"))
    _, config, meta = load_act(tmp_path / "ckpt")
    assert config.fps == 15.0 and meta["fps_source"] == "train_config.json env.fps"
    assert meta["state_names"] == ["throttle", "steering"]
