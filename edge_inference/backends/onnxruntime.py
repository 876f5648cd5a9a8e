"""ONNX Runtime backend (fp32 ``model.onnx`` and QDQ int8 ``model.int8.onnx``); no torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_inference.backends import BackendError, check_inputs
from edge_inference.deploy.onnx_export import METADATA_KEY, ort_load_errors


def session_options(threads: int) -> ort.SessionOptions:
    """Threads pinned to the config: intra-op = ``threads``, inter-op 1, no spinning."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn the cores the control loop and camera need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxRuntimeBackend:
    def __init__(self, model_file: Path, name: str = "onnxruntime", threads: int = 1, **_: object):
        import json

        self.name = name
        self.model_file = Path(model_file)
        if self.model_file.suffix != ".onnx":
            raise BackendError(f"backend {name!r} needs an .onnx file, got {self.model_file}")
        try:
            self.session = ort.InferenceSession(str(self.model_file), session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except ort_load_errors() as err:  # a damaged, empty or foreign file
            raise BackendError(f"ONNX Runtime cannot load {self.model_file}: {err}") from err
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise BackendError(f"{self.model_file} has no '{METADATA_KEY}' metadata; export it with "
                               "`edge-inference export`")
        self.metadata = json.loads(raw)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = {i.name: list(i.shape) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_shapes = {o.name: list(o.shape) for o in self.session.get_outputs()}

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, check_inputs(inputs, self.input_shapes))

    def close(self) -> None:
        self.session = None
