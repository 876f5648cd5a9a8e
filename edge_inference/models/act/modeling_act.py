"""Action Chunking Transformer (Zhao et al. 2023), re-implemented to load LeRobot weights as they are.

Module and parameter names follow ``lerobot/policies/act/modeling_act.py`` so a
LeRobot ``model.safetensors`` loads with strict key checking:

- ``model.backbone.*``: torchvision ResNet (conv1, bn1, layer1..layer4 of BasicBlocks with
  conv1/bn1/conv2/bn2/downsample.0/.1) as in ``IntermediateLayerGetter(return_layers=
  {"layer4": "feature_map"})``: no avgpool/fc; FrozenBatchNorm2d buffers (weight, bias,
  running_mean, running_var). torchvision itself is not needed.
- ``model.encoder.layers.{i}.*`` / ``model.decoder.layers.{i}.*``: DETR-style layers; the
  position embedding is added to queries and keys inside every layer (not once at the input).
- ``model.encoder_{robot_state,latent,img_feat}_input_proj``, ``model.encoder_1d_feature_pos_embed``,
  ``model.decoder_pos_embed``, ``model.action_head``; with ``use_vae`` also ``model.vae_encoder*``.

At inference the latent is zeros and the decoder input is zeros (the queries are the
learned ``decoder_pos_embed``), exactly as LeRobot does.

``ACTInferenceModule`` wraps the network with the checkpoint's normalization, so
``forward(image [0,1], state raw) -> actions raw`` is self-contained (and so is its ONNX).
Tensor layout in the transformer is LeRobot's: (S, B, D) sequence-first.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edge_inference.models.act.configuration_act import ACTConfig

RESNET_LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
BACKBONE_CHANNELS = 512  # layer4 output channels of resnet18/34
NORM_EPS = 1e-8  # LeRobot's normalizer eps: (x - mean) / (std + eps)


# --------------------------------------------------------------------------------------- backbone
class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics (torchvision.ops.FrozenBatchNorm2d): the same four buffers."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # torchvision drops num_batches_tracked (written by a regular BatchNorm2d) the same way.
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()  # (C,)
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (names included)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, norm_layer=None):
        super().__init__()
        norm_layer = norm_layer or FrozenBatchNorm2d
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = norm_layer(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm_layer(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), norm_layer(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetBackbone(nn.Module):
    """ResNet trunk up to layer4: (B, 3, H, W) normalized -> (B, 512, ceil(H/32), ceil(W/32)).

    Equivalent of ``IntermediateLayerGetter(resnet, {"layer4": "feature_map"})``: same child
    names, so ``model.backbone.layer1.0.conv1.weight`` etc. load unchanged.
    ``trainable_norm``: regular BatchNorm2d for training from scratch (no ImageNet weights
    here; a ResNet without working normalization does not train). Its four statistics
    buffers have the FrozenBatchNorm2d names, so the trained weights load frozen.
    """

    def __init__(self, name: str = "resnet18", replace_final_stride_with_dilation: bool = False,
                 trainable_norm: bool = False):
        super().__init__()
        blocks = RESNET_LAYERS[name]
        norm_layer = nn.BatchNorm2d if trainable_norm else FrozenBatchNorm2d
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels, in_ch, dilation = (64, 128, 256, 512), 64, 1
        for i, (out_ch, n) in enumerate(zip(channels, blocks)):
            stride = 1 if i == 0 else 2
            if i == 3 and replace_final_stride_with_dilation:
                # torchvision only allows dilation in Bottleneck ResNets; LeRobot's default is False.
                raise NotImplementedError("replace_final_stride_with_dilation needs a Bottleneck ResNet (torchvision "
                                          "rejects it for resnet18/34 too)")
            layer = [BasicBlock(in_ch, out_ch, stride, dilation, norm_layer)] + \
                [BasicBlock(out_ch, out_ch, norm_layer=norm_layer) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            in_ch = out_ch

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # "feature_map"


# ------------------------------------------------------------------------------------ transformer
def _activation(name: str):
    return {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}[name]


def _with_pos(x: Tensor, pos: Tensor | None) -> Tensor:
    return x if pos is None else x + pos


class ACTEncoderLayer(nn.Module):
    def __init__(self, config: ACTConfig):
        super().__init__()
        d = config.dim_model
        self.self_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(d, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.activation = _activation(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, pos_embed: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        skip = x  # (S, B, D)
        if self.pre_norm:
            x = self.norm1(x)
        q = k = _with_pos(x, pos_embed)
        x = self.self_attn(q, k, value=x, key_padding_mask=key_padding_mask, need_weights=False)[0]
        x = skip + self.dropout1(x)
        if self.pre_norm:
            skip = x
            x = self.norm2(x)
        else:
            x = self.norm1(x)
            skip = x
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        x = skip + self.dropout2(x)
        return x if self.pre_norm else self.norm2(x)


class ACTEncoder(nn.Module):
    def __init__(self, config: ACTConfig, is_vae_encoder: bool = False):
        super().__init__()
        n = config.n_vae_encoder_layers if is_vae_encoder else config.n_encoder_layers
        self.layers = nn.ModuleList([ACTEncoderLayer(config) for _ in range(n)])
        self.norm = nn.LayerNorm(config.dim_model) if config.pre_norm else nn.Identity()

    def forward(self, x: Tensor, pos_embed: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos_embed=pos_embed, key_padding_mask=key_padding_mask)
        return self.norm(x)


class ACTDecoderLayer(nn.Module):
    def __init__(self, config: ACTConfig):
        super().__init__()
        d = config.dim_model
        self.self_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.multihead_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(d, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)
        self.activation = _activation(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, encoder_out: Tensor, decoder_pos_embed: Tensor | None = None,
                encoder_pos_embed: Tensor | None = None) -> Tensor:
        skip = x  # (chunk, B, D)
        if self.pre_norm:
            x = self.norm1(x)
        q = k = _with_pos(x, decoder_pos_embed)
        x = self.self_attn(q, k, value=x, need_weights=False)[0]
        x = skip + self.dropout1(x)
        if self.pre_norm:
            skip = x
            x = self.norm2(x)
        else:
            x = self.norm1(x)
            skip = x
        x = self.multihead_attn(query=_with_pos(x, decoder_pos_embed), key=_with_pos(encoder_out, encoder_pos_embed),
                                value=encoder_out, need_weights=False)[0]
        x = skip + self.dropout2(x)
        if self.pre_norm:
            skip = x
            x = self.norm3(x)
        else:
            x = self.norm2(x)
            skip = x
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        x = skip + self.dropout3(x)
        return x if self.pre_norm else self.norm3(x)


class ACTDecoder(nn.Module):
    def __init__(self, config: ACTConfig):
        super().__init__()
        self.layers = nn.ModuleList([ACTDecoderLayer(config) for _ in range(config.n_decoder_layers)])
        self.norm = nn.LayerNorm(config.dim_model)  # always present in LeRobot's decoder

    def forward(self, x: Tensor, encoder_out: Tensor, decoder_pos_embed: Tensor | None = None,
                encoder_pos_embed: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, encoder_out, decoder_pos_embed=decoder_pos_embed, encoder_pos_embed=encoder_pos_embed)
        return self.norm(x)


def sinusoidal_pos_embedding_2d(dimension: int, height: int, width: int) -> Tensor:
    """DETR/LeRobot ACTSinusoidalPositionEmbedding2d for an (H, W) feature map -> (1, 2*dimension, H, W).

    Coordinates are normalized to (0, 2π] along each axis, then embedded with sin/cos
    at frequencies 10000^(2⌊i/2⌋/dimension); y channels first, then x.
    """
    eps, two_pi, temperature = 1e-6, 2 * math.pi, 10000
    not_mask = torch.ones(1, height, width)
    y_range = not_mask.cumsum(1, dtype=torch.float32)
    x_range = not_mask.cumsum(2, dtype=torch.float32)
    y_range = y_range / (y_range[:, -1:, :] + eps) * two_pi
    x_range = x_range / (x_range[:, :, -1:] + eps) * two_pi
    inverse_frequency = temperature ** (2 * (torch.arange(dimension, dtype=torch.float32) // 2) / dimension)
    pos_x = x_range.unsqueeze(-1) / inverse_frequency  # (1, H, W, dimension)
    pos_y = y_range.unsqueeze(-1) / inverse_frequency
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=-1).flatten(3)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=-1).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)  # (1, 2*dimension, H, W)


def sinusoidal_pos_embedding_1d(num_positions: int, dimension: int) -> Tensor:
    """LeRobot create_sinusoidal_pos_embedding: (num_positions, dimension), float32."""
    position = np.arange(num_positions)[:, None]
    angle = position / np.power(10000, 2 * (np.arange(dimension) // 2) / dimension)  # (P, D)
    angle[:, 0::2] = np.sin(angle[:, 0::2])
    angle[:, 1::2] = np.cos(angle[:, 1::2])
    return torch.from_numpy(angle).float()


def feature_map_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """ResNet layer4 output (h, w) for an input (H, W): every stride-2 stage rounds up."""
    h, w = image_size
    for _ in range(5):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


# ------------------------------------------------------------------------------------------ model
class ACT(nn.Module):
    """The network on normalized inputs: LeRobot's ``ACTPolicy.model`` (hence the ``model.`` prefix).

    Data flow (training adds the CVAE encoder on the left; at inference the latent is zeros)::

                                   image (B, 3, H, W)        state (B, S)
                                          |                      |
                                  ResNet backbone            Linear -> (1, B, D)
                                   (B, 512, h, w)                |
                                  1x1 conv -> (h*w, B, D)        |
        [actions, state] -> CVAE encoder -> latent z -> Linear -> (1, B, D)
              (training only)                  |
                   tokens = [z, state, h*w image features]  (2 + h*w, B, D)
                   + 1D (z, state) / 2D sinusoidal (image) position embeddings
                                          |
                               transformer encoder (n_encoder_layers)
                                          |
            decoder queries: zeros + learned decoder_pos_embed (chunk, B, D)
                                          |
                               transformer decoder (n_decoder_layers)
                                          |
                         action_head: Linear -> actions (B, chunk, A)

    One decoder layer, as LeRobot: the original ACT configured 7 but a bug used only the
    first (https://github.com/tonyzhaozh/act/issues/25).
    """

    def __init__(self, config: ACTConfig, trainable_backbone_norm: bool = False):
        super().__init__()
        self.config = config
        d = config.dim_model
        if config.use_vae:
            self.vae_encoder = ACTEncoder(config, is_vae_encoder=True)
            self.vae_encoder_cls_embed = nn.Embedding(1, d)
            self.vae_encoder_robot_state_input_proj = nn.Linear(config.state_dim, d)
            self.vae_encoder_action_input_proj = nn.Linear(config.action_dim, d)
            self.vae_encoder_latent_output_proj = nn.Linear(d, config.latent_dim * 2)
            # [cls, state, chunk actions]; a persistent buffer in LeRobot, so it is in the state dict.
            self.register_buffer("vae_encoder_pos_enc",
                                 sinusoidal_pos_embedding_1d(2 + config.chunk_size, d).unsqueeze(0))
        self.backbone = ResNetBackbone(config.vision_backbone, config.replace_final_stride_with_dilation,
                                       trainable_backbone_norm)
        self.encoder = ACTEncoder(config)
        self.decoder = ACTDecoder(config)
        self.encoder_robot_state_input_proj = nn.Linear(config.state_dim, d)
        self.encoder_latent_input_proj = nn.Linear(config.latent_dim, d)
        self.encoder_img_feat_input_proj = nn.Conv2d(BACKBONE_CHANNELS, d, kernel_size=1)
        self.encoder_1d_feature_pos_embed = nn.Embedding(2, d)  # [latent, robot state]
        self.decoder_pos_embed = nn.Embedding(config.chunk_size, d)
        self.action_head = nn.Linear(d, config.action_dim)
        fh, fw = feature_map_size(config.image_size)
        # Constant for a static image size: computed once, exported as an initializer.
        cam_pos = sinusoidal_pos_embedding_2d(d // 2, fh, fw).flatten(2).permute(2, 0, 1)  # (h*w, 1, D)
        self.register_buffer("cam_pos_embed", cam_pos, persistent=False)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Xavier-uniform on the transformer weights (LeRobot's init)."""
        for module in (self.encoder, self.decoder):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def encode_latent(self, state: Tensor, actions: Tensor, action_is_pad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """CVAE encoder (training only): [cls, state, actions] -> (latent sample, mu, log(σ²))."""
        b = state.shape[0]
        cls = self.vae_encoder_cls_embed.weight.unsqueeze(0).expand(b, -1, -1)  # (B, 1, D)
        tokens = torch.cat([cls, self.vae_encoder_robot_state_input_proj(state).unsqueeze(1),
                            self.vae_encoder_action_input_proj(actions)], dim=1)  # (B, 2+chunk, D)
        pos = self.vae_encoder_pos_enc.clone().detach().permute(1, 0, 2)  # (2+chunk, 1, D)
        pad = torch.cat([torch.zeros(b, 2, dtype=torch.bool, device=state.device), action_is_pad], dim=1)
        cls_out = self.vae_encoder(tokens.permute(1, 0, 2), pos_embed=pos, key_padding_mask=pad)[0]  # (B, D)
        params = self.vae_encoder_latent_output_proj(cls_out)
        mu, log_sigma_x2 = params[:, :self.config.latent_dim], params[:, self.config.latent_dim:]
        return mu + log_sigma_x2.div(2).exp() * torch.randn_like(mu), mu, log_sigma_x2

    def forward_from_features(self, features: Tensor, state: Tensor, latent: Tensor | None = None) -> Tensor:
        """(B, 512, h, w) backbone features + (B, S) normalized state -> (B, chunk, A) normalized actions."""
        b = state.shape[0]
        if latent is None:
            latent = torch.zeros(b, self.config.latent_dim, dtype=state.dtype, device=state.device)
        tokens_1d = torch.stack([self.encoder_latent_input_proj(latent),
                                 self.encoder_robot_state_input_proj(state)], dim=0)  # (2, B, D)
        cam = self.encoder_img_feat_input_proj(features).flatten(2).permute(2, 0, 1)  # (h*w, B, D)
        if not torch.jit.is_tracing() and cam.shape[0] != self.cam_pos_embed.shape[0]:
            raise ValueError(f"feature map has {cam.shape[0]} cells but the model was built for image size "
                             f"{self.config.image_size} ({self.cam_pos_embed.shape[0]} cells)")
        tokens = torch.cat([tokens_1d, cam], dim=0)  # (2 + h*w, B, D)
        pos = torch.cat([self.encoder_1d_feature_pos_embed.weight.unsqueeze(1),
                         self.cam_pos_embed], dim=0)  # (2 + h*w, 1, D)
        encoder_out = self.encoder(tokens, pos_embed=pos)
        decoder_in = torch.zeros(self.config.chunk_size, b, self.config.dim_model, dtype=tokens.dtype,
                                 device=tokens.device)
        decoder_out = self.decoder(decoder_in, encoder_out, encoder_pos_embed=pos,
                                   decoder_pos_embed=self.decoder_pos_embed.weight.unsqueeze(1))  # (chunk, B, D)
        return self.action_head(decoder_out.transpose(0, 1))  # (B, chunk, A)

    def forward(self, image: Tensor, state: Tensor, latent: Tensor | None = None) -> Tensor:
        """Normalized image (B, 3, H, W) and state (B, S) -> normalized actions (B, chunk, A)."""
        return self.forward_from_features(self.backbone(image), state, latent)


# ------------------------------------------------------------------------------- normalization
class Normalization(nn.Module):
    """The checkpoint's feature statistics as affine maps (not in the state dict: they are stats, not weights).

    Inputs: x_n = (x - shift) / scale; output: x = x_n * scale + shift. MEAN_STD gives
    shift = mean, scale = std + 1e-8 (inputs) or std (actions), as LeRobot's normalizer.
    MIN_MAX maps [min, max] to [-1, 1]; IDENTITY is shift 0, scale 1.
    """

    def __init__(self, config: ACTConfig, stats: dict[str, dict[str, np.ndarray]] | None = None):
        super().__init__()
        stats = stats or {}
        modes = config.normalization_mapping
        img = _affine(stats.get(config.image_feature), modes.get("VISUAL", "MEAN_STD"), 3, config.image_feature, True)
        st = _affine(stats.get("observation.state"), modes.get("STATE", "MEAN_STD"), config.state_dim,
                     "observation.state", True)
        act = _affine(stats.get("action"), modes.get("ACTION", "MEAN_STD"), config.action_dim, "action", False)
        self.register_buffer("image_shift", img[0].reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_scale", img[1].reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("state_shift", st[0].reshape(1, -1), persistent=False)
        self.register_buffer("state_scale", st[1].reshape(1, -1), persistent=False)
        self.register_buffer("action_shift", act[0].reshape(1, 1, -1), persistent=False)
        self.register_buffer("action_scale", act[1].reshape(1, 1, -1), persistent=False)

    def image(self, x: Tensor) -> Tensor:
        return (x - self.image_shift) / self.image_scale

    def state(self, x: Tensor) -> Tensor:
        return (x - self.state_shift) / self.state_scale

    def action(self, x: Tensor) -> Tensor:
        return (x - self.action_shift) / self.action_scale

    def unnormalize_action(self, x: Tensor) -> Tensor:
        return x * self.action_scale + self.action_shift


def _affine(stats: dict[str, np.ndarray] | None, mode: str, size: int, name: str,
            is_input: bool) -> tuple[Tensor, Tensor]:
    """(shift, scale) float32 tensors of ``size`` values for one feature."""
    eps = NORM_EPS if is_input else 0.0

    def stat(key: str) -> np.ndarray:
        if stats is None or key not in stats:
            raise ValueError(f"normalization stats for {name!r} lack {key!r} (mode {mode}; have "
                             f"{sorted(stats) if stats else 'no stats'})")
        value = np.asarray(stats[key], dtype=np.float64).reshape(-1)
        if value.size != size:
            raise ValueError(f"normalization stat {name}.{key} has {value.size} values, expected {size}")
        return value

    if mode == "IDENTITY":
        shift, scale = np.zeros(size), np.ones(size)
    elif mode == "MEAN_STD":
        shift, scale = stat("mean"), stat("std") + eps
    elif mode == "MIN_MAX":
        lo, hi = stat("min"), stat("max")
        half = (hi - lo + (NORM_EPS if is_input else 0.0)) / 2
        shift, scale = lo + half, half
    else:
        raise ValueError(f"unknown normalization mode {mode!r} for {name!r}")
    if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(scale))) or np.any(scale == 0):
        raise ValueError(f"normalization stats for {name!r} are unusable (non-finite or zero scale): "
                         f"shift {shift}, scale {scale}")
    return torch.tensor(shift, dtype=torch.float32), torch.tensor(scale, dtype=torch.float32)


class ACTInferenceModule(nn.Module):
    """image (B, 3, H, W) float32 RGB in [0, 1], state (B, S) raw -> actions (B, chunk, A) raw.

    ``state_dict()`` holds only ``model.*`` (LeRobot's keys); the statistics are
    non-persistent buffers, so they live in the traced/exported graph but not in the weights.
    """

    def __init__(self, config: ACTConfig, stats: dict[str, dict[str, np.ndarray]] | None = None):
        super().__init__()
        self.config = config
        self.model = ACT(config)
        self.normalize = Normalization(config, stats)

    def forward(self, image: Tensor, state: Tensor) -> Tensor:
        actions = self.model(self.normalize.image(image), self.normalize.state(state))  # (B, chunk, A) normalized
        return self.normalize.unnormalize_action(actions)


# -------------------------------------------------------------------------------- Hailo split
class ACTBackboneModule(nn.Module):
    """Input ``image`` (B, 3, H, W) [0, 1] -> output ``features`` (B, 512, ceil(H/32), ceil(W/32)).

    The part for the NPU (normalization + ResNet: convolutions only). Shares weights with
    the full module.
    """

    def __init__(self, full: ACTInferenceModule):
        super().__init__()
        self.normalize = full.normalize
        self.backbone = full.model.backbone

    def forward(self, image: Tensor) -> Tensor:
        return self.backbone(self.normalize.image(image))


class ACTHeadModule(nn.Module):
    """Inputs ``features`` (B, 512, h, w) and ``state`` (B, S) raw -> output ``actions`` (B, chunk, A) raw.

    The transformer half for ONNX Runtime on the host.
    """

    def __init__(self, full: ACTInferenceModule):
        super().__init__()
        self.normalize = full.normalize
        self.model = full.model

    def forward(self, features: Tensor, state: Tensor) -> Tensor:
        actions = self.model.forward_from_features(features, self.normalize.state(state))
        return self.normalize.unnormalize_action(actions)


def backbone_module(full: ACTInferenceModule) -> ACTBackboneModule:
    """image -> features (see ``ACTBackboneModule``)."""
    return ACTBackboneModule(full)


def head_module(full: ACTInferenceModule) -> ACTHeadModule:
    """(features, state) -> actions (see ``ACTHeadModule``)."""
    return ACTHeadModule(full)
