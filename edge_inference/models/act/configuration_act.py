"""ACT hyperparameters: one dataclass, LeRobot's field names and defaults unless noted.

The LeRobot fields (``chunk_size`` ... ``optimizer_lr_backbone``) are written to a
checkpoint's ``config.json`` exactly as LeRobot names them, so LeRobot can read our
checkpoints and we can read theirs. The fields LeRobot does not have (``image_size``,
``state_dim``, ``action_dim``, ``action_names``, ``fps``, ``image_feature``) are either
derived from LeRobot's ``input_features``/``output_features`` or stored in the
project's ``edge_inference.json`` next to it (see ``checkpoint.py``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

SUPPORTED_BACKBONES = ("resnet18", "resnet34")  # BasicBlock ResNets; resnet50 needs Bottleneck
NORMALIZATION_MODES = ("MEAN_STD", "MIN_MAX", "IDENTITY")
ACTIVATIONS = ("relu", "gelu", "glu")

# LeRobot feature keys (lerobot.utils.constants)
OBS_STATE = "observation.state"
ACTION = "action"
DEFAULT_IMAGE_FEATURE = "observation.images.front"


@dataclass
class ACTConfig:
    """ACT hyperparameters, with LeRobot's field names and defaults unless noted.

    Validated exhaustively in ``__post_init__`` (LeRobot checks a few fields; a bad
    checkpoint here fails at load with the field's name, not on the first frame).

    Args:
        Input / output structure:
            image_size: model input image (H, W), px; the camera frame is resized to it (car: 360x640).
            state_dim: observation.state size ([steering, throttle]).
            action_dim: action size ([steering, throttle]).
            action_names: names of the action dims, in order.
            image_feature: LeRobot feature key of the (single) camera.
            fps: rate of the demonstrations, Hz: consecutive actions of a chunk are 1/fps apart.
            n_obs_steps: observation history; ACT uses 1 only.
            chunk_size: actions predicted per inference (car: 32).
            n_action_steps: actions executed from each chunk before predicting again (<= chunk_size).
            normalization_mapping: normalization per feature type: MEAN_STD, MIN_MAX or IDENTITY.
        Architecture:
            vision_backbone: torchvision ResNet name.
            pretrained_backbone_weights: torchvision weights LeRobot starts from (we cannot download them:
                informational).
            replace_final_stride_with_dilation: layer4 dilation instead of stride: 2x larger feature map.
            pre_norm: LayerNorm before (True) or after each block.
            dim_model: transformer width D.
            n_heads: attention heads; must divide dim_model.
            dim_feedforward: feed-forward hidden size.
            feedforward_activation: relu, gelu or glu.
            n_encoder_layers: transformer encoder layers.
            n_decoder_layers: decoder layers. LeRobot uses 1: the original ACT configured 7, but a bug used
                only the first (https://github.com/tonyzhaozh/act/issues/25).
            use_vae: train with the CVAE objective (latent zeros at inference).
            latent_dim: CVAE latent size.
            n_vae_encoder_layers: CVAE encoder layers.
        Inference:
            temporal_ensemble_coeff: ACT temporal ensembling weight exp(-coeff*i) (paper 0.01); needs
                n_action_steps == 1.
        Training:
            dropout: dropout in the transformer.
            kl_weight: weight of the KL term when use_vae.
            optimizer_lr: AdamW learning rate (transformer).
            optimizer_weight_decay: AdamW weight decay.
            optimizer_lr_backbone: AdamW learning rate (backbone).
    """

    # input / output structure
    image_size: tuple[int, int] = (360, 640)
    state_dim: int = 2
    action_dim: int = 2
    action_names: list[str] = field(default_factory=lambda: ["steering", "throttle"])
    image_feature: str = DEFAULT_IMAGE_FEATURE
    fps: float = 20.0
    n_obs_steps: int = 1
    chunk_size: int = 32
    n_action_steps: int = 32
    normalization_mapping: dict[str, str] = field(default_factory=lambda: {
        "VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"})
    # architecture
    vision_backbone: str = "resnet18"
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    replace_final_stride_with_dilation: bool = False
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    use_vae: bool = True
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    # inference
    temporal_ensemble_coeff: float | None = None
    # training
    dropout: float = 0.1
    kl_weight: float = 10.0
    optimizer_lr: float = 1e-5
    optimizer_weight_decay: float = 1e-4
    optimizer_lr_backbone: float = 1e-5

    def __post_init__(self) -> None:
        self.image_size = tuple(int(v) for v in self.image_size)  # type: ignore[assignment]
        self.action_names = [str(n) for n in self.action_names]
        if len(self.image_size) != 2 or min(self.image_size) < 32:
            raise ValueError(f"image_size must be (H, W) with both >= 32 px (ResNet stride 32), got {self.image_size}")
        for name in ("state_dim", "action_dim", "chunk_size", "n_action_steps", "dim_model", "n_heads",
                     "dim_feedforward", "n_encoder_layers", "n_decoder_layers", "latent_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_obs_steps != 1:
            raise ValueError(f"ACT takes one observation step (n_obs_steps=1), got {self.n_obs_steps}")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"n_action_steps ({self.n_action_steps}) cannot exceed chunk_size ({self.chunk_size})")
        if self.temporal_ensemble_coeff is not None and self.n_action_steps > 1:
            raise NotImplementedError("temporal ensembling needs n_action_steps == 1 (a new chunk every step)")
        if self.dim_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide dim_model ({self.dim_model})")
        if self.vision_backbone not in SUPPORTED_BACKBONES:
            raise ValueError(f"vision_backbone {self.vision_backbone!r} not supported; "
                             f"use one of {SUPPORTED_BACKBONES}")
        if self.feedforward_activation not in ACTIVATIONS:
            raise ValueError(f"feedforward_activation must be one of {ACTIVATIONS}, "
                             f"got {self.feedforward_activation!r}")
        if len(self.action_names) != self.action_dim:
            raise ValueError(f"{len(self.action_names)} action_names {self.action_names} "
                             f"for action_dim {self.action_dim}")
        for kind, mode in self.normalization_mapping.items():
            if mode not in NORMALIZATION_MODES:
                raise ValueError(f"normalization_mapping[{kind!r}] = {mode!r}; expected one of {NORMALIZATION_MODES}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")

    @property
    def dt(self) -> float:
        """Seconds between consecutive actions of a chunk."""
        return 1.0 / self.fps

    # --- LeRobot config.json ---------------------------------------------------------------------
    def to_lerobot_dict(self) -> dict[str, Any]:
        """config.json as LeRobot's ACTConfig writes it (type, features, hyperparameters)."""
        h, w = self.image_size
        own = {"image_size", "state_dim", "action_dim", "action_names", "image_feature", "fps"}
        out: dict[str, Any] = {"type": "act"}
        out.update({k: v for k, v in asdict(self).items() if k not in own})
        out["input_features"] = {self.image_feature: {"type": "VISUAL", "shape": [3, h, w]},
                                 OBS_STATE: {"type": "STATE", "shape": [self.state_dim]}}
        out["output_features"] = {ACTION: {"type": "ACTION", "shape": [self.action_dim]}}
        return out

    def to_project_dict(self) -> dict[str, Any]:
        """The fields LeRobot's config.json has no place for (edge_inference.json)."""
        return {"image_size": list(self.image_size), "action_names": list(self.action_names), "fps": self.fps,
                "image_feature": self.image_feature, "state_dim": self.state_dim, "action_dim": self.action_dim}

    @classmethod
    def from_lerobot_dict(cls, raw: dict[str, Any], project: dict[str, Any] | None = None) -> "ACTConfig":
        """LeRobot config.json (+ our edge_inference.json) -> config; clear errors on missing features."""
        if raw.get("type", "act") != "act":
            raise ValueError(f"config.json is a {raw.get('type')!r} policy, not 'act'")
        inputs = raw.get("input_features") or _features_from_shapes(raw.get("input_shapes"))
        outputs = raw.get("output_features") or _features_from_shapes(raw.get("output_shapes"))
        images = [k for k, v in inputs.items() if _feature_type(v) == "VISUAL"]
        if len(images) != 1:
            raise ValueError(f"config.json input_features must hold exactly one VISUAL (camera) feature, found "
                             f"{images or 'none'} in {sorted(inputs)}")
        env = [k for k, v in inputs.items() if _feature_type(v) == "ENV"]
        if env:
            raise ValueError(f"config.json input feature(s) {env} (environment state) are not supported")
        if OBS_STATE not in inputs:
            raise ValueError(f"config.json input_features lack {OBS_STATE!r} (found {sorted(inputs)})")
        if ACTION not in outputs:
            raise ValueError(f"config.json output_features lack {ACTION!r} (found {sorted(outputs)})")
        image_shape = list(inputs[images[0]]["shape"])
        if len(image_shape) != 3 or image_shape[0] != 3:
            raise ValueError(f"feature {images[0]!r} shape {image_shape} is not (3, H, W)")
        project = dict(project or {})
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in known}
        kwargs.update(image_size=(image_shape[1], image_shape[2]), image_feature=images[0],
                      state_dim=int(inputs[OBS_STATE]["shape"][0]), action_dim=int(outputs[ACTION]["shape"][0]))
        if "action_names" in project:
            kwargs["action_names"] = project["action_names"]
        elif kwargs["action_dim"] != 2:
            kwargs["action_names"] = [f"action_{i}" for i in range(kwargs["action_dim"])]
        if "fps" in project:
            kwargs["fps"] = project["fps"]
        return cls(**kwargs)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ACTConfig":
        """Our own flat dict (``asdict`` output)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown ACTConfig field(s): {unknown}")
        return cls(**raw)


def _feature_type(feature: Any) -> str:
    """LeRobot writes {"type": "VISUAL"}; older configs wrote the enum repr ("FeatureType.VISUAL")."""
    kind = feature.get("type", "") if isinstance(feature, dict) else ""
    return str(kind).rsplit(".", 1)[-1].upper()


def _features_from_shapes(shapes: dict[str, Any] | None) -> dict[str, Any]:
    """Early LeRobot configs (input_shapes/output_shapes, no types): the type from the key."""
    out = {}
    for key, shape in (shapes or {}).items():
        kind = "VISUAL" if key.startswith("observation.image") else "ACTION" if key == ACTION else \
            "ENV" if key == "observation.environment_state" else "STATE"
        out[key] = {"type": kind, "shape": list(shape)}
    return out
