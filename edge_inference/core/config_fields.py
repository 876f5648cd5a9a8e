"""Config dataclass fields that document themselves (no ROS needed).

Cores declare their settings as dataclasses with ``param()`` fields; field metadata
(``description``, ``read_only``, ``range`` = (min, max), ``choices``) becomes the ROS
parameter descriptor in ``edge_inference.ros.params`` and is validated here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from edge_inference.core.errors import EdgeInferenceError

T = TypeVar("T")


class ParameterError(EdgeInferenceError, ValueError):
    """A parameter value that the node cannot run with."""


def validate(cfg: T) -> T:
    """Check ``choices`` metadata (ranges are enforced by rclpy's descriptors)."""
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        choices = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if choices and value not in choices:
            raise ParameterError(f"parameter {f.name!r}={value!r} is not one of {list(choices)}")
        lo_hi = f.metadata.get("range")
        if lo_hi and isinstance(value, (int, float)) and not (lo_hi[0] <= value <= lo_hi[1]):
            raise ParameterError(f"parameter {f.name!r}={value!r} is outside {lo_hi}")
    return cfg


def config_from_dict(cfg_cls: type[T], data: dict) -> T:
    """Build a config from a plain dict (YAML ros__parameters), rejecting unknown keys."""
    names = {f.name for f in dataclasses.fields(cfg_cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ParameterError(f"unknown parameters for {cfg_cls.__name__}: {unknown}")
    return validate(cfg_cls(**data))


def param(default: Any, description: str, **meta) -> Any:
    """Shorthand for a documented dataclass field: ``rate: float = param(30.0, "Hz")``."""
    meta["description"] = description
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda d=default: list(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
