"""Declare ROS parameters from a config dataclass, with descriptors, and apply them at run time.

Configs are plain dataclasses in the core modules (testable without ROS); a node
calls ``declare_params(self, MyConfig)`` and gets a populated instance back.
Field metadata: ``description`` (shown by ``ros2 param describe``), ``read_only``,
``range`` = (min, max) for numbers, ``choices`` = allowed strings (validated here).

``LiveParams`` makes ``ros2 param set`` mean what it says: a node names the fields
that take effect at run time and the function that applies them; every other field
is declared read-only, so rclpy refuses to change it instead of reporting a success
that changes nothing.
"""
from __future__ import annotations

import dataclasses
import threading
import typing
from typing import Any, Callable, Collection, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
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


def descriptor_for(f: dataclasses.Field, ptype: int, read_only: bool | None = None) -> ParameterDescriptor:
    """Build the ParameterDescriptor of one dataclass field (``read_only`` overrides the metadata)."""
    meta = f.metadata
    if read_only is None:
        read_only = bool(meta.get("read_only", False))
    d = ParameterDescriptor(name=f.name, type=ptype, description=meta.get("description", ""), read_only=read_only)
    if "choices" in meta:
        d.additional_constraints = "one of: " + ", ".join(meta["choices"])
    if "range" in meta:
        lo, hi = meta["range"]
        if ptype == ParameterType.PARAMETER_DOUBLE:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        elif ptype == ParameterType.PARAMETER_INTEGER:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


def declare_params(node, cfg_cls: type[T], prefix: str = "", live: Collection[str] | None = None) -> T:
    """Declare one parameter per field of ``cfg_cls`` on ``node``; return the filled config.

    ``live``: the fields the node applies when set at run time; all others are declared
    read-only. None keeps the fields' ``read_only`` metadata (tools that never set parameters).
    """
    hints = typing.get_type_hints(cfg_cls)
    names = {f.name for f in dataclasses.fields(cfg_cls)}  # type: ignore[arg-type]
    if live is not None and set(live) - names:
        raise ParameterError(f"{cfg_cls.__name__} has no field(s) {sorted(set(live) - names)}")
    values = {}
    for f in dataclasses.fields(cfg_cls):  # type: ignore[arg-type]
        if f.metadata.get("ros") is False:
            continue
        ptype = _TYPES.get(hints[f.name])
        if ptype is None:
            raise ParameterError(f"config field {f.name!r} has type {hints[f.name]} with no ROS parameter type")
        name = prefix + f.name
        default = _field_default(f)
        if live is not None and f.name in live and f.metadata.get("read_only"):
            raise ParameterError(f"{cfg_cls.__name__}.{f.name} is read_only in its metadata but listed as live")
        desc = descriptor_for(f, ptype, read_only=None if live is None else f.name not in live)
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


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value


@dataclasses.dataclass
class _Group:
    cfg_cls: type
    attr: str  # the node attribute holding the current config
    prefix: str
    live: frozenset[str]
    apply: Callable[[Any, set[str]], None] | None


class LiveParams:
    """One ``add_on_set_parameters_callback`` per node: validate, apply, then accept.

    ``declare(cfg_cls, attr, live=..., apply=...)`` declares the fields (those not in
    ``live`` read-only), stores the config as ``node.<attr>`` and, when any live field
    is set, builds the new config (its ``__post_init__`` and the ``choices``/``range``
    metadata validate it), calls ``apply(new_cfg, changed_names)`` and only then stores
    it. A ValueError from either refuses the whole request with its message as the
    reason, which ``ros2 param set`` prints.
    """

    def __init__(self, node):
        self._node = node
        self._groups: list[_Group] = []
        self._lock = threading.Lock()  # a service handler and the parameter service may set at once
        self._declaring = False  # declaration also runs the callback: initial values are not changes
        node.add_on_set_parameters_callback(self._on_set)

    def declare(self, cfg_cls: type[T], attr: str, live: Collection[str] = (),
                apply: Callable[[T, set[str]], None] | None = None, prefix: str = "") -> T:
        self._declaring = True
        try:
            cfg = declare_params(self._node, cfg_cls, prefix, live=tuple(live))
        finally:
            self._declaring = False
        setattr(self._node, attr, cfg)
        self._groups.append(_Group(cfg_cls, attr, prefix, frozenset(live), apply))
        return cfg

    @property
    def live_names(self) -> set[str]:
        """Every parameter name that takes effect when set (the rest are read-only)."""
        return {g.prefix + name for g in self._groups for name in g.live}

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        if self._declaring:
            return SetParametersResult(successful=True)
        with self._lock:
            try:
                staged = self._stage(params)
                for group, new_cfg, changed in staged:
                    if group.apply is not None:
                        group.apply(new_cfg, changed)
                    setattr(self._node, group.attr, new_cfg)
            except (ValueError, TypeError) as err:
                self._node.get_logger().warning(f"parameter change refused: {err}")
                return SetParametersResult(successful=False, reason=str(err))
        for group, new_cfg, changed in staged:
            if changed:
                self._node.get_logger().info("set " + ", ".join(f"{n}={getattr(new_cfg, n)!r}" for n in sorted(changed)))
        return SetParametersResult(successful=True)

    def _stage(self, params: list[Parameter]) -> list[tuple[_Group, Any, set[str]]]:
        """(group, new config, changed fields) per group touched; raises ValueError when invalid."""
        changes: dict[int, dict[str, Any]] = {}
        for p in params:
            for i, g in enumerate(self._groups):
                name = p.name[len(g.prefix):] if p.name.startswith(g.prefix) else None
                if name in {f.name for f in dataclasses.fields(g.cfg_cls)}:  # type: ignore[arg-type]
                    if name not in g.live:  # rclpy refuses read-only ones first; keep the rule here too
                        raise ParameterError(f"parameter {p.name!r} is read-only: restart the node to change it")
                    changes.setdefault(i, {})[name] = _plain(p.value)
                    break
        staged = []
        for i, values in changes.items():
            g = self._groups[i]
            current = getattr(self._node, g.attr)
            new_cfg = validate(dataclasses.replace(current, **values))
            staged.append((g, new_cfg, {k for k, v in values.items() if getattr(current, k) != v}))
        return staged
