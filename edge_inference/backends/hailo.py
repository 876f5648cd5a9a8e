"""HailoRT backend (Hailo-8 NPU) with the scheduler-based InferModel API; no torch.

- One ``VDevice`` per process, created with ``HailoSchedulingAlgorithm.ROUND_ROBIN``,
  is shared by every model (policy and behavior) so several HEFs time-share the chip.
- ``vdevice.create_infer_model(hef)``; inputs and outputs use FLOAT32 host format
  (HailoRT quantizes/dequantizes on the host), configured once.
- HEF tensors are NHWC without the batch axis: an ONNX (1, C, H, W) input is fed as
  (H, W, C); (H, W, C) outputs come back as (1, C, H, W), vectors as (1, N).
- Split models: the HEF holds the part that maps well to the NPU (conv encoder / ResNet
  backbone); ``<hef>.json`` may name a ``host_model`` ONNX (FSQ head / ACT transformer)
  that ONNX Runtime runs on the HEF outputs plus pass-through inputs (e.g. ACT state).

``<hef>.json`` (written by ``edge-inference hailo-compile``) holds the model metadata plus
``npu_inputs`` (model inputs, in the HEF's input order), ``npu_outputs`` (names of the HEF
outputs, in the HEF's output order: host-model inputs or model outputs) and optionally
``host_model``. HEF layer names (e.g. ``fsq/input_layer1``) are matched by position.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from edge_inference.backends import BackendError, check_inputs

_shared_lock = threading.Lock()
_shared: dict[str, Any] = {"vdevice": None, "users": 0}


def _hailo_platform():
    try:
        import hailo_platform
    except ImportError as err:
        raise BackendError("backend 'hailo' needs HailoRT's Python bindings (hailo_platform); on the Pi: "
                           "`sudo apt install hailo-all`") from err
    return hailo_platform


def shared_vdevice():
    """The process-wide scheduler VDevice (created on first use)."""
    hp = _hailo_platform()
    with _shared_lock:
        if _shared["vdevice"] is None:
            params = hp.VDevice.create_params()
            params.scheduling_algorithm = hp.HailoSchedulingAlgorithm.ROUND_ROBIN
            _shared["vdevice"] = hp.VDevice(params)
        _shared["users"] += 1
        return _shared["vdevice"]


def release_vdevice() -> None:
    with _shared_lock:
        _shared["users"] -= 1
        if _shared["users"] <= 0 and _shared["vdevice"] is not None:
            vdevice, _shared["vdevice"], _shared["users"] = _shared["vdevice"], None, 0
            release = getattr(vdevice, "release", None)
            if release is not None:
                release()


def nchw_to_hef(x: np.ndarray) -> np.ndarray:
    """(1, C, H, W) -> contiguous (H, W, C); (1, N) -> (N,)."""
    if x.ndim == 4:
        return np.ascontiguousarray(x[0].transpose(1, 2, 0))
    return np.ascontiguousarray(x[0])


def hef_to_nchw(y: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (1, C, H, W); (N,) -> (1, N)."""
    if y.ndim == 3:
        return np.ascontiguousarray(y.transpose(2, 0, 1))[None]
    return np.ascontiguousarray(y.reshape(1, -1))


def _by_position(model_names: list[str], hef_names: list[str], what: str) -> dict[str, str]:
    """{model name: HEF layer name}, matched in order."""
    if len(model_names) != len(hef_names):
        raise BackendError(f"HEF has {len(hef_names)} {what} {list(hef_names)}, its metadata names "
                           f"{len(model_names)}: {model_names}")
    return dict(zip(model_names, hef_names))


class HailoBackend:
    def __init__(self, model_file: Path, name: str = "hailo", timeout_ms: int = 1000, threads: int = 1,
                 **_: object):
        self.name = name
        self.model_file = Path(model_file)
        self.timeout_ms = int(timeout_ms)
        sidecar = self.model_file.with_name(self.model_file.name + ".json")
        if self.model_file.suffix != ".hef" or not sidecar.is_file():
            raise BackendError(f"backend 'hailo' needs a .hef with its {sidecar.name} (from `edge-inference "
                               f"hailo-compile`), got {self.model_file}")
        self.metadata = json.loads(sidecar.read_text())
        self.input_shapes = dict(self.metadata["inputs"])
        self.input_names = list(self.input_shapes)
        self.host = None
        if self.metadata.get("host_model"):
            from edge_inference.backends.onnxruntime import OnnxRuntimeBackend

            self.host = OnnxRuntimeBackend(self.model_file.parent / self.metadata["host_model"],
                                           name="hailo-host", threads=threads)
        hp = _hailo_platform()
        self.vdevice = shared_vdevice()
        try:
            self.infer_model = self.vdevice.create_infer_model(str(self.model_file))
            self.infer_model.set_batch_size(1)
            self.npu_inputs = _by_position(list(self.metadata["npu_inputs"]), self.infer_model.input_names, "inputs")
            self.npu_outputs = {hef: name for name, hef in _by_position(
                self.metadata["npu_outputs"], self.infer_model.output_names, "outputs").items()}
            for hef_name in self.npu_inputs.values():
                self.infer_model.input(hef_name).set_format_type(hp.FormatType.FLOAT32)
            for hef_name in self.npu_outputs:
                self.infer_model.output(hef_name).set_format_type(hp.FormatType.FLOAT32)
            self.configured = self.infer_model.configure()
        except Exception:
            release_vdevice()
            raise
        # Output buffers are reused across calls; HailoRT writes into them.
        self.output_buffers = {n: np.empty(tuple(self.infer_model.output(n).shape), dtype=np.float32)
                               for n in self.npu_outputs}
        self._lock = threading.Lock()

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        checked = check_inputs(inputs, self.input_shapes)
        with self._lock:
            bindings = self.configured.create_bindings()
            for model_name, hef_name in self.npu_inputs.items():
                bindings.input(hef_name).set_buffer(nchw_to_hef(checked[model_name]))
            for hef_name, buffer in self.output_buffers.items():
                bindings.output(hef_name).set_buffer(buffer)
            self.configured.run([bindings], self.timeout_ms)
            npu = {self.npu_outputs[n]: hef_to_nchw(bindings.output(n).get_buffer()) for n in self.npu_outputs}
        if self.host is None:
            return [npu[name] for name in self.metadata["outputs"]]
        host_inputs = {k: v for k, v in checked.items() if k in self.host.input_shapes} | npu
        return self.host.run(host_inputs)

    def close(self) -> None:
        if self.vdevice is None:
            return
        shutdown = getattr(self.configured, "shutdown", None)
        if shutdown is not None:
            shutdown()
        self.configured = self.infer_model = None
        self.vdevice = None
        release_vdevice()
