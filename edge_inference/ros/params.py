"""Declare ROS parameters from a config dataclass, with descriptors.

Configs are plain dataclasses in the core modules (testable without ROS); a node
calls ``declare_params(self, MyConfig)`` and gets a populated instance back.
Field metadata: ``description`` (shown by ``ros2 param describe``), ``read_only``,
``range`` = (min, max) for numbers, ``choices`` = allowed strings (validated here).
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from edge_inference.core.config_fields import ParameterError, config_from_dict, param, validate  # noqa: F401 - re-exported

T = TypeVar("T")

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
    list[float]: ParameterType.PARAMETER_DOUBLE_ARRAY,
    list[int]: ParameterType.PARAMETER_INTEGER_ARRAY,
    list[str]: ParameterType.PARAMETER_STRING_ARRAY,
    list[bool]: ParameterType.PARAMETER_BOOL_ARRAY,
}
_PARAM_TYPES = {
    ParameterType.PARAMETER_BOOL: Parameter.Type.BOOL,
    ParameterType.PARAMETER_INTEGER: Parameter.Type.INTEGER,
    ParameterType.PARAMETER_DOUBLE: Parameter.Type.DOUBLE,
    ParameterType.PARAMETER_STRING: Parameter.Type.STRING,
    ParameterType.PARAMETER_DOUBLE_ARRAY: Parameter.Type.DOUBLE_ARRAY,
    ParameterType.PARAMETER_INTEGER_ARRAY: Parameter.Type.INTEGER_ARRAY,
    ParameterType.PARAMETER_STRING_ARRAY: Parameter.Type.STRING_ARRAY,
    ParameterType.PARAMETER_BOOL_ARRAY: Parameter.Type.BOOL_ARRAY,
}


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    raise ParameterError(f"config field {f.name!r} needs a default to become a ROS parameter")


def descriptor_for(f: dataclasses.Field, ptype: int) -> ParameterDescriptor:
    """Build the ParameterDescriptor of one dataclass field."""
    meta = f.metadata
    d = ParameterDescriptor(name=f.name, type=ptype, description=meta.get("description", ""),
                            read_only=bool(meta.get("read_only", False)))
    if "choices" in meta:
        d.additional_constraints = "one of: " + ", ".join(meta["choices"])
    if "range" in meta:
        lo, hi = meta["range"]
        if ptype == ParameterType.PARAMETER_DOUBLE:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        elif ptype == ParameterType.PARAMETER_INTEGER:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


def declare_params(node, cfg_cls: type[T], prefix: str = "") -> T:
    """Declare one parameter per field of ``cfg_cls`` on ``node``; return the filled config."""
    hints = typing.get_type_hints(cfg_cls)
    values = {}
    for f in dataclasses.fields(cfg_cls):  # type: ignore[arg-type]
        if f.metadata.get("ros") is False:
            continue
        ptype = _TYPES.get(hints[f.name])
        if ptype is None:
            raise ParameterError(f"config field {f.name!r} has type {hints[f.name]} with no ROS parameter type")
        name = prefix + f.name
        default = _field_default(f)
        desc = descriptor_for(f, ptype)
        if isinstance(default, list) and not default:
            node.declare_parameter(name, _PARAM_TYPES[ptype], desc)
            try:
                value = node.get_parameter(name).value
            except ParameterUninitializedException:  # declared by type, no value given
                value = None
            values[f.name] = list(value) if value is not None else []
        else:
            node.declare_parameter(name, default, desc)
            value = node.get_parameter(name).value
            values[f.name] = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value
    return validate(cfg_cls(**values))
