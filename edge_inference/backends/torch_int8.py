"""PyTorch int8 backend, as in the original Pi deployment.

- Convolution stacks: static int8 (FX graph mode) calibrated on real samples;
  engine ``qnnpack`` on ARM, ``x86`` here.
- Linear layers elsewhere (transformer, heads): dynamic int8.

Calibration samples come from ``calibration.npz`` in the checkpoint directory (arrays
named by model input, as written by ``train-fsq`` / ``quantize``) or the
``calibration`` option; without them only the dynamic Linear quantization applies.
"""
from __future__ import annotations

import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_inference.backends import BackendError
from edge_inference.backends.torch import TorchBackend, load_torch_model

#: Sub-modules that are plain conv stacks (FX-traceable): FSQ encoder, ACT ResNet backbone.
STATIC_CANDIDATES = ("classifier.encoder.blocks", "model.backbone", "backbone")


def quantized_engine() -> str:
    machine = platform.machine().lower()
    engine = "qnnpack" if machine in ("aarch64", "arm64") or machine.startswith("arm") else "x86"
    if engine not in torch.backends.quantized.supported_engines:
        raise BackendError(f"torch has no quantized engine {engine!r} (has {torch.backends.quantized.supported_engines})")
    return engine


def _submodule(root: nn.Module, dotted: str) -> nn.Module | None:
    module = root
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _set_submodule(root: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = _submodule(root, parent_name) if parent_name else root
    setattr(parent, child, new)


def quantize_torch_int8(module: nn.Module, input_names: list[str],
                        calibration: dict[str, np.ndarray] | None, max_samples: int = 200) -> tuple[nn.Module, list[str]]:
    """-> (quantized module, names of the statically quantized sub-modules)."""
    # torch.ao.quantization warns that it moves to torchao; it is what the Pi deployment used.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*(reduce_range|quantize_per_tensor).*", category=UserWarning)
        return _quantize(module, input_names, calibration, max_samples)


def _quantize(module: nn.Module, input_names: list[str], calibration: dict[str, np.ndarray] | None,
              max_samples: int) -> tuple[nn.Module, list[str]]:
    from torch.ao.quantization import get_default_qconfig_mapping, quantize_dynamic
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = quantized_engine()
    torch.backends.quantized.engine = engine
    module = module.eval()
    static = []
    if calibration:
        n = min(min(len(v) for v in calibration.values()), max_samples)
        batches = [tuple(torch.from_numpy(np.asarray(calibration[k][i:i + 1], np.float32)) for k in input_names)
                   for i in range(n)]
        for name in STATIC_CANDIDATES:
            sub = _submodule(module, name)
            if sub is None:
                continue
            captured = []
            handle = sub.register_forward_pre_hook(lambda _m, args: captured.append(args))
            with torch.no_grad():
                module(*batches[0])
            handle.remove()
            prepared = prepare_fx(sub, get_default_qconfig_mapping(engine), captured[0])
            _set_submodule(module, name, prepared)
            with torch.no_grad():
                for batch in batches:  # observers record activation ranges on real samples
                    module(*batch)
            _set_submodule(module, name, convert_fx(prepared))
            static.append(name)
            break
    module = quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)
    return module, static


class TorchInt8Backend(TorchBackend):
    def __init__(self, model_file: Path, name: str = "torch-int8", threads: int = 1,
                 calibration: dict[str, np.ndarray] | None = None, **_: Any):
        torch.set_num_threads(int(threads))
        module, metadata = load_torch_model(model_file)
        if calibration is None:
            calib_file = Path(model_file) / "calibration.npz" if Path(model_file).is_dir() else None
            if calib_file is not None and calib_file.is_file():
                with np.load(calib_file) as data:
                    calibration = {k: data[k] for k in metadata["inputs"] if k in data}
        quantized, self.static_modules = quantize_torch_int8(module, list(metadata["inputs"]), calibration or None)
        super().__init__(model_file, name=name, threads=threads, module=quantized, metadata=metadata)
