"""ONNX Runtime backend (fp32 ``model.onnx`` and QDQ int8 ``model.int8.onnx``); no torch."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_inference.backends import BackendError, check_inputs
from edge_inference.deploy.onnx_export import METADATA_KEY, ort_load_errors


@dataclass(frozen=True)
class SessionTuning:
    """How ONNX Runtime runs a model on the CPU (levers measured in docs/PERFORMANCE_NOTES_17.md).

    - ``spin_in_run``: the intra-op threads spin while a Run goes on and stop at its end
      (``session.force_spinning_stop``). Waking sleeping threads for every op cost the car ACT
      ~3 ms per call; spinning between calls would burn the cores the control loop and camera
      need, and with the stop a 15 Hz ACT loop used the same CPU as never spinning.
    - ``skip_layer_norm_fusion``: ORT fuses residual Add + LayerNormalization into its
      SkipLayerNormalization contrib op, whose CPU kernel took 2.7 ms for the car ACT's 10 pairs
      where the unfused Add + LayerNormalization took 1.0 ms; so it is off.
    """

    spin_in_run: bool = True
    skip_layer_norm_fusion: bool = False

    def disabled_optimizers(self) -> list[str]:
        return [] if self.skip_layer_norm_fusion else ["SkipLayerNormFusion"]


def session_options(threads: int, tuning: SessionTuning = SessionTuning()) -> ort.SessionOptions:
    """Threads pinned to the config: intra-op = ``threads``, inter-op 1, spinning only inside a Run."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if tuning.spin_in_run else "0")
    if tuning.spin_in_run:
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    return opts


def create_session(model: str | Path | bytes, threads: int, tuning: SessionTuning = SessionTuning(),
                   optimized_model_path: str | Path | None = None) -> ort.InferenceSession:
    """A CPU session as the nodes and ``bench`` run it (``optimized_model_path``: save the graph ORT runs)."""
    opts = session_options(threads, tuning)
    if optimized_model_path is not None:
        opts.optimized_model_filepath = str(optimized_model_path)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=tuning.disabled_optimizers() or None)


class OnnxRuntimeBackend:
    def __init__(self, model_file: Path, name: str = "onnxruntime", threads: int = 1,
                 tuning: SessionTuning | None = None, **_: object):
        import json

        self.name = name
        self.model_file = Path(model_file)
        if self.model_file.suffix != ".onnx":
            raise BackendError(f"backend {name!r} needs an .onnx file, got {self.model_file}")
        self.tuning = tuning or SessionTuning()
        try:
            self.session = create_session(self.model_file, threads, self.tuning)
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
