"""backends/onnxruntime: the CPU session spins only inside a Run and runs residual + LayerNorm unfused."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_inference.backends import create_backend
from edge_inference.backends.onnxruntime import SessionTuning, create_session


def residual_layer_norm_model() -> bytes:
    """y = LayerNorm(x + Gemm(x)): the residual pattern ORT fuses into SkipLayerNormalization."""
    rng = np.random.default_rng(0)
    weights = {"w": rng.standard_normal((16, 16)).astype(np.float32), "b": np.zeros(16, np.float32),
               "gamma": np.ones(16, np.float32), "beta": np.zeros(16, np.float32),
               "shape2d": np.array([-1, 16], np.int64), "shape3d": np.array([4, 1, 16], np.int64)}
    nodes = [helper.make_node("Reshape", ["x", "shape2d"], ["x2"]),
             helper.make_node("Gemm", ["x2", "w", "b"], ["g2"]),
             helper.make_node("Reshape", ["g2", "shape3d"], ["g"]),
             helper.make_node("Add", ["x", "g"], ["s"]),
             helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5)]
    graph = helper.make_graph(nodes, "residual_ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 1, 16])],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def optimized_ops(tmp_path, tuning: SessionTuning) -> list[str]:
    path = tmp_path / f"optimized_{tuning.skip_layer_norm_fusion}.onnx"
    session = create_session(residual_layer_norm_model(), threads=1, tuning=tuning, optimized_model_path=path)
    x = np.random.default_rng(1).standard_normal((4, 1, 16)).astype(np.float32)
    assert np.isfinite(session.run(None, {"x": x})[0]).all()
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_residual_layer_norm_is_not_fused_by_default(tmp_path):
    ops = optimized_ops(tmp_path, SessionTuning())
    assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops


def test_the_fusion_switch_is_what_keeps_it_unfused(tmp_path):
    assert "SkipLayerNormalization" in optimized_ops(tmp_path, SessionTuning(skip_layer_norm_fusion=True))


@pytest.mark.parametrize("tuning,spinning", [(SessionTuning(), ("1", "1")), (SessionTuning(spin_in_run=False), ("0", None))])
def test_backend_session_spins_only_inside_a_run(tmp_path, tuning, spinning):
    from onnx_models import tiny_fsq_model

    model_dir = tiny_fsq_model(tmp_path / "fsq")
    backend = create_backend("onnxruntime", model_dir, threads=2, tuning=tuning)
    opts = backend.session.get_session_options()
    assert opts.intra_op_num_threads == 2
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == spinning[0]
    if spinning[1] is not None:  # threads stop spinning when Run returns: no CPU burnt between control-loop calls
        assert opts.get_session_config_entry("session.force_spinning_stop") == spinning[1]
