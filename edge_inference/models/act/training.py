"""ACT training loop (LeRobot's objective) on ``Demonstrations``, CPU or CUDA.

Differences from LeRobot's recipe, and why:
- the ResNet trains from scratch with regular BatchNorm (no ImageNet weights offline);
  the statistics are saved under FrozenBatchNorm2d's names, so inference is unchanged;
- mild photometric + shift augmentation: one indoor drive is little data and the
  evaluation drive is another day's light;
- a contiguous tail of the data is held out to report validation error per epoch.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from edge_inference.models.act.configuration_act import ACTION, OBS_STATE, ACTConfig
from edge_inference.models.act.dataset import Demonstrations
from edge_inference.models.act.modeling_act import ACT, Normalization

PROGRESS_PERIOD_S = 30.0  # a progress line at least this often inside an epoch


def act_loss(model: ACT, config: ACTConfig, image_n: Tensor, state_n: Tensor, actions_n: Tensor,
             action_is_pad: Tensor) -> tuple[Tensor, dict[str, float]]:
    """LeRobot's ACT objective on normalized tensors: masked L1 on the chunk (+ kl_weight·KL with the CVAE)."""
    features = model.backbone(image_n)
    if config.use_vae:
        latent, mu, log_sigma_x2 = model.encode_latent(state_n, actions_n, action_is_pad)
    else:
        latent = mu = log_sigma_x2 = None
    pred = model.forward_from_features(features, state_n, latent)  # (B, chunk, A)
    l1 = (F.l1_loss(pred, actions_n, reduction="none") * ~action_is_pad.unsqueeze(-1)).mean()
    info = {"l1_loss": float(l1.detach())}
    loss = l1
    if mu is not None:
        # KL(q(z|x) || N(0, I)) summed over the latent dims, averaged over the batch, as LeRobot does
        # (closed form: App. B of https://arxiv.org/abs/1312.6114).
        kld = (-0.5 * (1 + log_sigma_x2 - mu.pow(2) - log_sigma_x2.exp())).sum(-1).mean()
        info["kld_loss"] = float(kld.detach())
        loss = l1 + kld * config.kl_weight
    return loss, info


@dataclass
class TrainConfig:
    """How ``train_act`` trains (LeRobot's objective; the recipe differences are in the module docstring).

    Args:
        epochs: passes over the training frames.
        batch_size: frames per optimizer step.
        lr: AdamW learning rate, transformer and backbone.
        weight_decay: AdamW weight decay.
        val_fraction: contiguous tail held out for validation.
        augment: brightness/contrast jitter and ±4 % shifts.
        device: auto | cpu | cuda.
        seed: shuffling and init seed.
        max_steps: stop after this many steps (tests).
        state_dropout: fraction of training frames whose state input is replaced by 0 (the after-a-pause
            state), so the camera, not a rare all-zero state, decides what to do then.
        flip_steering: mirror half the frames left-right and negate steering (action/state dim 0): a track
            turns both ways; needs action_names[0] == 'steering', +steering = left.
        use_state: False: image-only policy (state zeroed in training, its input weights zeroed after), to
            measure what the camera alone contributes.
    """

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    augment: bool = True
    device: str = "auto"
    seed: int = 0
    max_steps: int | None = None
    state_dropout: float = 0.0
    flip_steering: bool = False
    use_state: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not 0.0 <= self.state_dropout < 1.0:
            raise ValueError(f"state_dropout must be in [0, 1), got {self.state_dropout}")
        if not 0.0 <= self.val_fraction < 0.9:
            raise ValueError(f"val_fraction must be in [0, 0.9), got {self.val_fraction}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but torch sees no CUDA GPU")
    return torch.device(name)


def lerobot_stats(data: Demonstrations, config: ACTConfig) -> dict[str, dict[str, np.ndarray]]:
    """Dataset statistics keyed like LeRobot's (image stats per channel)."""
    s = data.stats()
    return {config.image_feature: {"mean": s["image_mean"], "std": s["image_std"]},
            OBS_STATE: {k: s[f"states_{k}"] for k in ("mean", "std", "min", "max")},
            ACTION: {k: s[f"actions_{k}"] for k in ("mean", "std", "min", "max")}}


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) [0, 1] -> jittered brightness/contrast (±20 %) and shifted by up to 4 % (border replicated)."""
    b = images.shape[0]
    dev = images.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * (hi - lo) + lo).to(dev)

    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * uniform(0.8, 1.2, b, 1, 1, 1) + mean * uniform(0.8, 1.2, b, 1, 1, 1)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = uniform(-0.08, 0.08, b, 2)  # grid units: 2 = full width
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False).clamp(0.0, 1.0)


def train_act(data: Demonstrations, config: ACTConfig, train: TrainConfig,
              log: Callable[[str], None] = print) -> tuple[ACT, dict[str, dict[str, np.ndarray]], dict]:
    """-> (trained ACT in eval mode on CPU, LeRobot-style stats, history with per-epoch losses)."""
    if data.images.shape[1:3] != tuple(config.image_size):
        raise ValueError(f"demonstration images are {data.images.shape[1:3]}, config image_size {config.image_size}")
    if data.states.shape[1] != config.state_dim or data.actions.shape[1] != config.action_dim:
        raise ValueError(f"demonstrations have state {data.states.shape[1]} / action {data.actions.shape[1]} dims, "
                         f"config {config.state_dim} / {config.action_dim}")
    if train.flip_steering and config.action_names[0] != "steering":
        raise ValueError(f"flip_steering negates action 0, which is {config.action_names[0]!r}, not 'steering'")
    if not train.use_state:
        data = Demonstrations(data.images, np.zeros_like(data.states), data.actions, data.segments, data.fps,
                              data.action_names, data.source)
    torch.manual_seed(train.seed)
    gen = torch.Generator().manual_seed(train.seed)
    device = resolve_device(train.device)
    n_val = int(len(data) * train.val_fraction)
    train_idx, val_idx = np.arange(len(data) - n_val), np.arange(len(data) - n_val, len(data))
    if n_val:  # the held-out tail starts new segments: no training chunk reaches into it
        segments = data.segments.copy()
        segments[val_idx] += int(segments.max()) + 1
        data = Demonstrations(data.images, data.states, data.actions, segments, data.fps, data.action_names,
                              data.source)
    stats = lerobot_stats(data.subset(train_idx), config)

    chunk_idx, pad = data.chunk_index(config.chunk_size)
    images = torch.from_numpy(data.images).to(device)  # (N, H, W, 3) uint8, on the device once
    states = torch.from_numpy(data.states).to(device)
    actions = torch.from_numpy(data.actions).to(device)
    chunk_idx_t, pad_t = torch.from_numpy(chunk_idx).to(device), torch.from_numpy(pad).to(device)

    model = ACT(config, trainable_backbone_norm=True).to(device)
    norm = Normalization(config, stats).to(device)
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    optimizer = torch.optim.AdamW([{"params": rest}, {"params": backbone}], lr=train.lr,
                                  weight_decay=train.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / train.batch_size)
    total = steps_per_epoch * train.epochs if train.max_steps is None else min(train.max_steps,
                                                                               steps_per_epoch * train.epochs)
    def lr_factor(s: int) -> float:  # short warm-up, cosine decay
        return min(1.0, (s + 1) / max(1, total // 20)) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    def batch(index: torch.Tensor, train_mode: bool):
        img = images[index].permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
        target = actions[chunk_idx_t[index]]  # (B, chunk, A)
        state = states[index]
        if train_mode and train.augment:
            img = augment(img, gen)
        if train_mode and train.flip_steering:
            flip = (torch.rand(len(index), generator=gen) < 0.5).to(device)
            img = torch.where(flip[:, None, None, None], img.flip(-1), img)
            sign = torch.ones(len(index), target.shape[-1], device=device)
            sign[:, 0] = 1.0 - 2.0 * flip.float()
            target, state = target * sign[:, None, :], state * sign[:, :state.shape[-1]]
        if train_mode and train.state_dropout > 0:
            keep = (torch.rand(len(index), generator=gen) >= train.state_dropout).to(device)
            state = state * keep[:, None]
        return norm.image(img), norm.state(state), norm.action(target), pad_t[index]

    history = {"epochs": [], "device": str(device), "train_frames": len(train_idx), "val_frames": n_val}
    step, t0 = 0, time.monotonic()
    last_report = t0
    log(f"train-act: {len(train_idx)} train / {n_val} val frames, {sum(p.numel() for p in model.parameters()):,} "
        f"parameters, device {device}, {train.epochs} epochs x {steps_per_epoch} steps")
    for epoch in range(train.epochs):
        model.train()
        order = torch.from_numpy(train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]).to(device)
        losses = []
        for start in range(0, len(order), train.batch_size):
            loss, info = act_loss(model, config, *batch(order[start:start + train.batch_size], True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            scheduler.step()
            losses.append(info["l1_loss"])
            step += 1
            if time.monotonic() - last_report > PROGRESS_PERIOD_S:  # long CPU epochs: show they move
                last_report = time.monotonic()
                log(f"  epoch {epoch + 1} step {step}/{total} L1 {np.mean(losses[-20:]):.4f} "
                    f"[{last_report - t0:.0f} s]")
            if train.max_steps is not None and step >= train.max_steps:
                break
        val_mae = evaluate_mae(model, norm, batch, val_idx, device) if n_val else None
        entry = {"epoch": epoch + 1, "train_l1": float(np.mean(losses)), "val_first_action_mae": val_mae,
                 "seconds": round(time.monotonic() - t0, 1)}
        history["epochs"].append(entry)
        val_text = "" if val_mae is None else " val MAE (first action) " + ", ".join(
            f"{n} {v:.4f}" for n, v in zip(config.action_names, val_mae))
        log(f"epoch {epoch + 1}/{train.epochs} step {step}/{total} train L1 (normalized) {entry['train_l1']:.4f}"
            f"{val_text} [{entry['seconds']:.0f} s]")
        if train.max_steps is not None and step >= train.max_steps:
            break
    if not train.use_state:
        with torch.no_grad():  # the state input then has no effect at all, whatever the robot feeds
            model.encoder_robot_state_input_proj.weight.zero_()
            if config.use_vae:
                model.vae_encoder_robot_state_input_proj.weight.zero_()
    return model.eval().cpu(), stats, history


@torch.no_grad()
def evaluate_mae(model: ACT, norm: Normalization, batch, index: np.ndarray, device: torch.device,
                 batch_size: int = 128) -> list[float]:
    """Mean |first predicted action - commanded action| in raw units over ``index``, per action dim."""
    model.eval()
    total = None
    for start in range(0, len(index), batch_size):
        idx = torch.from_numpy(index[start:start + batch_size]).to(device)
        img, st, target, _ = batch(idx, False)
        pred = norm.unnormalize_action(model(img, st))[:, 0]  # (B, A)
        err = (pred - norm.unnormalize_action(target)[:, 0]).abs().sum(0)
        total = err if total is None else total + err
    model.train()
    return [float(v) for v in (total / len(index)).cpu()]
