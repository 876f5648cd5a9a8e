"""The base of the project's expected failures, and how the CLI puts any failure on one line.

An ``EdgeInferenceError`` means "the input, a file or the environment is not what
the command needs": the user can fix it, a traceback would not help. The existing
error types (GraphConfigError, CheckpointError, BagError, TubError, ...) derive from
it beside their builtin base, so ``except ValueError`` around them keeps working.
Errors of libraries that read files (YAML, JSON, safetensors, ONNX, ONNX Runtime,
rclpy parameters) are recognised by ``is_expected`` without importing those libraries.
"""
from __future__ import annotations

import json
import sys
import zipfile


class EdgeInferenceError(Exception):
    """An expected failure: bad input, missing or damaged file, missing tool. One line, no traceback.

    ``exit_code`` is the CLI's exit status for it (see edge_inference/cli.py).
    """

    exit_code = 2


class UsageError(EdgeInferenceError, ValueError):
    """Options that do not fit together or do not fit the given model/data."""


class CheckFailed(EdgeInferenceError):
    """The command ran, but its result failed its check (parity, accuracy gate, laps): exit 1."""

    exit_code = 1


class ToolMissing(EdgeInferenceError):
    """A required SDK/tool is not installed on this machine (e.g. Hailo's compiler): exit 3."""

    exit_code = 3


# Library errors that mean "this file / value is bad", as (module, class name): matched only
# when the module is already imported (an exception cannot come from a module never loaded).
LIBRARY_ERRORS = (
    ("yaml", "YAMLError"),
    ("safetensors", "SafetensorError"),
    ("safetensors._safetensors_rust", "SafetensorError"),
    ("google.protobuf.message", "DecodeError"),
    ("onnx.onnx_cpp2py_export.checker", "ValidationError"),
    ("onnx.checker", "ValidationError"),
    # ONNX Runtime: load/shape errors of a model file; not RuntimeException/EPFail (runtime faults)
    ("onnxruntime.capi.onnxruntime_pybind11_state", "Fail"),
    ("onnxruntime.capi.onnxruntime_pybind11_state", "InvalidArgument"),
    ("onnxruntime.capi.onnxruntime_pybind11_state", "InvalidGraph"),
    ("onnxruntime.capi.onnxruntime_pybind11_state", "InvalidProtobuf"),
    ("onnxruntime.capi.onnxruntime_pybind11_state", "NoSuchFile"),
    ("onnxruntime.capi.onnxruntime_pybind11_state", "NotImplemented"),
    ("rclpy.exceptions", "ParameterException"),
    ("rclpy.exceptions", "NameValidationException"),
)

# Builtin errors that only come from reading inputs: files (OSError, incl. serial ports),
# JSON text, .npz archives (empty file: EOFError; damaged: BadZipFile).
BUILTIN_ERRORS = (EdgeInferenceError, OSError, json.JSONDecodeError, zipfile.BadZipFile, EOFError,
                  UnicodeDecodeError)


def _library_error_types() -> list[type]:
    found = []
    for module_name, class_name in LIBRARY_ERRORS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return found


# Optional libraries a command may need but a machine may lack (the robot has no torch), and how to
# get each: a missing one is a clean "not installed" (exit 3), not a bug.
OPTIONAL_LIBRARIES = {
    "torch": "training and export need torch: pip install -r requirements/dev.txt (not on the robot)",
    "onnx": "ONNX export/quantization needs onnx: pip install onnx",
    "pyarrow": "LeRobot datasets need pyarrow: pip install -r requirements/dev.txt",
    "av": "LeRobot dataset video needs PyAV: pip install -r requirements/dev.txt",
    "hailo_platform": "the Hailo backend needs HailoRT: sudo apt install hailo-all",
    "picamera2": "the picamera2 source needs Picamera2: sudo apt install python3-picamera2",
}


def missing_library(exc: BaseException) -> ToolMissing | None:
    """A ModuleNotFoundError of an optional library, as the ToolMissing it is; None otherwise."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        if top in OPTIONAL_LIBRARIES:
            return ToolMissing(f"{top} is not installed: {OPTIONAL_LIBRARIES[top]}")
    return None


def is_expected(exc: BaseException) -> bool:
    """True for failures of the input/environment (one ``error:`` line), False for bugs."""
    return isinstance(exc, BUILTIN_ERRORS) or isinstance(exc, tuple(_library_error_types()))


def one_line(text: str, limit: int = 1000) -> str:
    """Collapse a (possibly multi-line) message to one line of at most ``limit`` characters."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    line = "; ".join(parts)
    return line if len(line) <= limit else line[:limit - 3] + "..."


def yaml_problem(exc: BaseException, path: object = None) -> str:
    """A YAML parse error as ``<problem> (<path>, line L, column C)``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or one_line(str(exc))
    where = [str(path)] if path is not None else []
    if mark is not None:
        where.append(f"line {mark.line + 1}, column {mark.column + 1}")
    return f"{problem} ({', '.join(where)})" if where else problem


def describe(exc: BaseException) -> str:
    """``<what> (<where>)`` for an expected failure, on one line."""
    if isinstance(exc, OSError) and not isinstance(exc, EdgeInferenceError) and exc.strerror:
        where = exc.filename if exc.filename is not None else None
        text = exc.strerror if where is None else f"{exc.strerror} ({where})"
        return one_line(text)
    if isinstance(exc, json.JSONDecodeError):
        return one_line(f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if isinstance(exc, EOFError):
        return one_line(f"file ends early or is empty: {exc}")
    if type(exc).__module__.split(".")[0] == "yaml":
        return one_line(f"invalid YAML: {yaml_problem(exc)}")
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, EdgeInferenceError) and type(exc).__module__ != "builtins":
        text = f"{text} [{type(exc).__name__}]"  # a library's error: say whose
    return one_line(text)
