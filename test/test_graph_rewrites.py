"""deploy/graph_rewrites: the SpaceToDepth stem rewrite keeps the fp32 outputs and touches only what it can express."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_inference.deploy.graph_rewrites import space_to_depth_stem, stem_candidates


def conv_model(channels: int, height: int, width: int, kernel: int, stride: int, pads, group: int = 1,
               dilation: int = 1, out_channels: int = 8, seed: int = 0, dynamic: bool = False) -> onnx.ModelProto:
    """x -> Sub(0.5) -> Conv -> Relu, as an exported ResNet stem (normalization, conv, activation)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((out_channels, channels // group, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32)
    dims = ["N", channels, "H", "W"] if dynamic else [1, channels, height, width]
    nodes = [helper.make_node("Sub", ["x", "half"], ["xn"], "/model/backbone/normalize"),
             helper.make_node("Conv", ["xn", "w", "b"], ["c"], "/model/backbone/conv1/Conv", strides=[stride, stride],
                              pads=list(pads), group=group, dilations=[dilation, dilation],
                              kernel_shape=[kernel, kernel]),
             helper.make_node("Relu", ["c"], ["y"], "/model/backbone/relu/Relu")]
    graph = helper.make_graph(nodes, "stem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "C", "h", "w"])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
                               numpy_helper.from_array(np.array(0.5, np.float32), "half")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("channels,height,width,kernel,stride,pads", [
    (3, 36, 64, 7, 2, (3, 3, 3, 3)),   # the ResNet stem (car ACT: 360 x 640)
    (3, 37, 51, 7, 2, (3, 3, 3, 3)),   # odd sizes
    (3, 20, 30, 3, 2, (1, 1, 1, 1)),   # the tiny test ACT's stem
    (1, 23, 19, 5, 3, (2, 1, 0, 2)),   # stride 3, asymmetric pads, one channel
    (2, 16, 16, 4, 2, (0, 0, 0, 0)),   # even kernel, no padding
    (3, 11, 12, 2, 2, (0, 0, 0, 0)),   # the conv never reads the last row: cropped
])
def test_rewritten_stem_computes_the_same_outputs(channels, height, width, kernel, stride, pads):
    model = conv_model(channels, height, width, kernel, stride, pads)
    x = np.random.default_rng(1).random((1, channels, height, width), dtype=np.float32)
    before = run(model, x)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    assert space_to_depth_stem(rewritten) == ["/model/backbone/conv1/Conv"]
    onnx.checker.check_model(rewritten)
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops == ["Sub", "Pad", "SpaceToDepth", "Conv", "Relu"]
    conv = rewritten.graph.node[3]
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    taps = -(-kernel // stride)
    assert attrs["strides"] == [1, 1] and attrs["kernel_shape"] == [taps, taps] and attrs["pads"] == [0, 0, 0, 0]
    weight = next(i for i in rewritten.graph.initializer if i.name == conv.input[1])
    assert list(weight.dims) == [8, stride * stride * channels, taps, taps]
    assert {i.name for i in rewritten.graph.initializer} == {"b", "half", conv.input[1], rewritten.graph.node[1].input[1]}
    after = run(rewritten, x)
    assert after.shape == before.shape
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-5 * max(1.0, float(np.abs(before).max())))


@pytest.mark.parametrize("kwargs,why", [
    (dict(channels=4, height=16, width=16, kernel=3, stride=2, pads=(1, 1, 1, 1)), "channels already a multiple of 4"),
    (dict(channels=3, height=16, width=16, kernel=3, stride=1, pads=(1, 1, 1, 1)), "not strided"),
    (dict(channels=3, height=16, width=16, kernel=3, stride=2, pads=(1, 1, 1, 1), group=3, out_channels=6), "grouped"),
    (dict(channels=3, height=16, width=16, kernel=3, stride=2, pads=(1, 1, 1, 1), dilation=2), "dilated"),
    (dict(channels=3, height=16, width=16, kernel=3, stride=2, pads=(1, 1, 1, 1), dynamic=True), "no static shape"),
])
def test_convs_the_rewrite_cannot_express_are_left_alone(kwargs, why):
    model = conv_model(**kwargs)
    before = model.SerializeToString()
    assert stem_candidates(model) == [], why
    assert space_to_depth_stem(model) == [], why
    assert model.SerializeToString() == before, why


def test_only_named_convs_are_rewritten():
    model = conv_model(3, 16, 16, 3, 2, (1, 1, 1, 1))
    assert space_to_depth_stem(model, names=["some/other/Conv"]) == []
    assert [n.op_type for n in model.graph.node] == ["Sub", "Conv", "Relu"]


def test_the_rewrite_removes_only_the_kernels_it_replaced():
    model = conv_model(3, 16, 16, 3, 2, (1, 1, 1, 1))
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(2, np.float32), "unrelated_unused"))
    assert space_to_depth_stem(model) == ["/model/backbone/conv1/Conv"]
    names = {i.name for i in model.graph.initializer}
    assert "unrelated_unused" in names and "w" not in names
