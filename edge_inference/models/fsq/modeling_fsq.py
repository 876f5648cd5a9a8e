"""FSQ behavior classifier: Conv2d-only encoder -> FSQ bottleneck -> classifier head.

Only Conv2d/BatchNorm2d/ReLU/mean/Linear ops, so the encoder maps onto Hailo-8 and the
exported ONNX has no Conv1d. BatchNorm is folded into the convs before export.
"""
from __future__ import annotations

import torch
from torch import nn

from edge_inference.models.fsq.configuration_fsq import FSQConfig
from edge_inference.models.fsq.quantizer import FSQ


def _conv_block(c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int]) -> nn.Sequential:
    padding = (0, kernel[1] // 2)
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class FSQEncoder(nn.Module):
    """(B, C, H, W) IMU window -> (B, D) latent before quantization."""

    def __init__(self, config: FSQConfig):
        super().__init__()
        k = config.kernel_size
        widths = list(config.conv_channels)
        # The first conv spans all rows (signal + its difference), later ones run along time.
        blocks = [_conv_block(config.in_channels, widths[0], (config.rows, k), (1, 1))]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            blocks.append(_conv_block(c_in, c_out, (1, k), (1, 2)))
        self.blocks = nn.Sequential(*blocks)
        self.to_latent = nn.Conv2d(widths[-1], len(config.levels), kernel_size=1)

    def latent_map(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x)  # (B, C', 1, W')
        h = h.mean(dim=(2, 3), keepdim=True)  # (B, C', 1, 1) global average over time
        return self.to_latent(h)  # (B, D, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent_map(x).flatten(1)  # (B, D)


class FSQClassifier(nn.Module):
    """(B, C, H, W) -> (logits (B, N), FSQ level values (B, D) in [0, L-1])."""

    def __init__(self, config: FSQConfig):
        super().__init__()
        self.config = config
        self.encoder = FSQEncoder(config)
        self.fsq = FSQ(config.levels)
        self.head = nn.Sequential(nn.Linear(len(config.levels), config.head_hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(config.dropout), nn.Linear(config.head_hidden, config.num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zhat, level_values = self.fsq(self.encoder(x))  # (B, D), (B, D)
        return self.head(zhat), level_values


class FSQInferenceModule(nn.Module):
    """Export/inference wrapper: (1, C, H, W) -> (probs (1, N), levels (1, D)).

    The code index is computed on the host from the levels (``codes.levels_to_index``),
    which keeps int64 arithmetic out of the graph for every backend, Hailo included.
    """

    def __init__(self, classifier: FSQClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, level_values = self.classifier(x)
        return torch.softmax(logits, dim=-1), level_values


class FSQNpuPart(nn.Module):
    """Hailo split, NPU side: (1, C, H, W) -> latent (1, D, 1, 1); convs + mean only."""

    def __init__(self, classifier: FSQClassifier):
        super().__init__()
        self.encoder = classifier.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.latent_map(x)


class FSQHostPart(nn.Module):
    """Hailo split, host side: latent (1, D, 1, 1) -> (probs, levels); rounding stays off the NPU."""

    def __init__(self, classifier: FSQClassifier):
        super().__init__()
        self.fsq = classifier.fsq
        self.head = classifier.head

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zhat, level_values = self.fsq(latent.flatten(1))
        return torch.softmax(self.head(zhat), dim=-1), level_values
