"""ACT network: ONNX export parity, the Hailo split, trained BatchNorm -> frozen, config validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from model_fixtures import HAS_TORCH, needs_torch

if HAS_TORCH:
    import torch

    from edge_inference.models.act import (
        ACT,
        ACTConfig,
        ACTInferenceModule,
        backbone_module,
        feature_map_size,
        head_module,
    )
    from edge_inference.models.act.modeling_act import FrozenBatchNorm2d, sinusoidal_pos_embedding_2d

pytestmark = needs_torch

IMAGE_HW = (48, 64)


def tiny_config(**overrides) -> ACTConfig:
    kw = dict(image_size=IMAGE_HW, chunk_size=8, n_action_steps=8, dim_model=32, n_heads=4, dim_feedforward=64,
              n_encoder_layers=2, n_decoder_layers=2, use_vae=False)
    return ACTConfig(**(kw | overrides))


def tiny_stats(config: ACTConfig) -> dict:
    return {config.image_feature: {"mean": np.array([0.45, 0.42, 0.4]), "std": np.array([0.22, 0.21, 0.2])},
            "observation.state": {"mean": np.array([0.0, 0.3]), "std": np.array([0.5, 0.1])},
            "action": {"mean": np.array([0.02, 0.31]), "std": np.array([0.45, 0.08])}}


def tiny_module(seed: int = 0, **overrides) -> ACTInferenceModule:
    torch.manual_seed(seed)
    config = tiny_config(**overrides)
    module = ACTInferenceModule(config, tiny_stats(config)).eval()
    with torch.no_grad():  # non-trivial frozen BatchNorm statistics, as in trained weights
        for m in module.modules():
            if isinstance(m, FrozenBatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
    return module


def test_onnx_export_opset17_matches_torch(tmp_path):
    import onnxruntime as ort

    module = tiny_module()
    image, state = torch.rand(1, 3, *IMAGE_HW), torch.randn(1, 2)
    path = tmp_path / "act.onnx"
    torch.onnx.export(module, (image, state), str(path), input_names=["image", "state"], output_names=["actions"],
                      opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [[1, 3, *IMAGE_HW], [1, 2]]  # static shapes
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        image, state = torch.rand(1, 3, *IMAGE_HW, generator=g), torch.randn(1, 2, generator=g)
        (onnx_out,) = session.run(None, {"image": image.numpy(), "state": state.numpy()})
        with torch.no_grad():
            torch_out = module(image, state).numpy()
        assert onnx_out.shape == (1, 8, 2)
        assert np.max(np.abs(onnx_out - torch_out)) <= 1e-4


def test_backbone_and_head_compose_to_the_full_model():
    module = tiny_module(1)
    image, state = torch.rand(2, 3, *IMAGE_HW), torch.randn(2, 2)
    with torch.no_grad():
        features = backbone_module(module)(image)
        assert features.shape == (2, 512, *feature_map_size(IMAGE_HW)) == (2, 512, 2, 2)
        assert torch.allclose(head_module(module)(features, state), module(image, state), atol=1e-6)


def test_outputs_depend_on_image_and_state():
    module = tiny_module(2)
    image, state = torch.rand(1, 3, *IMAGE_HW), torch.zeros(1, 2)
    with torch.no_grad():
        base = module(image, state)
        assert not torch.allclose(base, module(image.flip(-1), state))
        assert not torch.allclose(base, module(image, state + 0.5))


def test_trained_batchnorm_loads_as_frozen_batchnorm_with_the_same_outputs():
    config = tiny_config()
    torch.manual_seed(4)
    trained = ACT(config, trainable_backbone_norm=True)
    trained.train()
    with torch.no_grad():  # a few forward passes in train mode update the running statistics
        for _ in range(3):
            trained(torch.rand(4, 3, *IMAGE_HW) * 2 - 1, torch.randn(4, 2))
    trained.eval()
    frozen = ACT(config).eval()
    state = {k: v for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    frozen.load_state_dict(state, strict=True)
    image, st = torch.randn(2, 3, *IMAGE_HW), torch.randn(2, 2)
    with torch.no_grad():
        assert torch.allclose(trained(image, st), frozen(image, st), atol=1e-5)


def test_camera_position_embedding_is_detr_sine():
    pos = sinusoidal_pos_embedding_2d(4, 2, 3)  # (1, 8, H=2, W=3): y channels then x channels
    assert pos.shape == (1, 8, 2, 3)
    y, x = 2 * math.pi * np.array([1, 2]) / (2 + 1e-6), 2 * math.pi * np.array([1, 2, 3]) / (3 + 1e-6)
    freq = 10000 ** (np.array([0, 0, 2, 2]) / 4)
    assert np.allclose(pos[0, 0, :, 0], np.sin(y / freq[0]), atol=1e-6)  # y, sin, lowest frequency
    assert np.allclose(pos[0, 1, :, 0], np.cos(y / freq[1]), atol=1e-6)
    assert np.allclose(pos[0, 6, 0, :], np.sin(x / freq[2]), atol=1e-6)  # x, sin, second frequency


@pytest.mark.parametrize("overrides, message", [
    ({"n_heads": 5}, "must divide dim_model"),
    ({"n_action_steps": 9}, "cannot exceed chunk_size"),
    ({"image_size": (16, 64)}, ">= 32 px"),
    ({"vision_backbone": "resnet50"}, "not supported"),
    ({"action_names": ["steering"]}, "action_names"),
    ({"normalization_mapping": {"STATE": "ZSCORE"}}, "normalization_mapping"),
    ({"fps": 0}, "fps must be > 0"),
])
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_module_rejects_an_image_of_another_size():
    module = tiny_module()
    with pytest.raises(ValueError, match="built for image size"):
        module(torch.rand(1, 3, 96, 128), torch.zeros(1, 2))


def test_min_max_and_identity_normalization_follow_lerobot():
    from edge_inference.models.act.modeling_act import Normalization

    config = tiny_config(normalization_mapping={"VISUAL": "IDENTITY", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"})
    stats = {"observation.state": {"min": np.array([-1.0, 0.0]), "max": np.array([1.0, 0.5])},
             "action": {"min": np.array([-0.5, 0.1]), "max": np.array([0.5, 0.9])}}
    norm = Normalization(config, stats)
    state = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, 0.25]])
    assert torch.allclose(norm.state(state), torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]), atol=1e-6)
    unit = torch.tensor([[[-1.0, 1.0]]])
    assert torch.allclose(norm.unnormalize_action(unit), torch.tensor([[[-0.5, 0.9]]]), atol=1e-6)
    image = torch.rand(1, 3, 4, 4)
    assert torch.equal(norm.image(image), image)
    with pytest.raises(ValueError, match="stats for 'action' lack 'min'"):
        Normalization(config, {"observation.state": stats["observation.state"], "action": {"mean": np.zeros(2)}})
