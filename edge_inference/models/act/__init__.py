"""LeRobot-compatible ACT: config, network, checkpoints, data and training.

``ACTConfig`` imports without torch; the modeling names (``ACTInferenceModule``,
``backbone_module``, ``head_module``, ``ACT``) import torch on first use, so the
robot's torch-free backends can still read an ACT config.

Hailo split tensor names: ``backbone_module(m)``: input ``image`` (B,3,H,W) [0,1] ->
output ``features`` (B,512,ceil(H/32),ceil(W/32)); ``head_module(m)``: inputs
``features`` and ``state`` (B,S) raw -> output ``actions`` (B,chunk,A) raw.
"""
from edge_inference.models.act.configuration_act import ACTConfig

_MODELING = ("ACT", "ACTInferenceModule", "ACTBackboneModule", "ACTHeadModule", "backbone_module", "head_module",
             "feature_map_size")

__all__ = ["ACTConfig", *_MODELING]


def __getattr__(name: str):
    if name in _MODELING:
        from edge_inference.models.act import modeling_act
        return getattr(modeling_act, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
