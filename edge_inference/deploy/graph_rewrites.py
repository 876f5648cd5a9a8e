"""Exact fp32 graph rewrites that let ONNX Runtime's int8 kernels run a model faster.

A strided convolution over few input channels (a ResNet stem: 7x7, stride 2, 3 RGB
channels) is the slowest int8 conv of the car ACT: ONNX Runtime's int8 conv kernels
gain little from 3 channels per kernel tap, and the stem took 5.2 ms of ~36 ms while
doing 4% of the multiply-adds (docs/PERFORMANCE_NOTES_17.md). ``space_to_depth_stem``
rewrites it as Pad -> SpaceToDepth(stride) -> stride-1 conv over stride^2 x C channels
(12 for RGB) with a ceil(K / stride) kernel: the same sums in another order, so the fp32
outputs agree to rounding, and the int8 conv took 1.9 ms.
"""
from __future__ import annotations

import numpy as np

STEM_PREFIX = "stem_s2d"


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _static_shapes(model) -> dict[str, list[int]]:
    """Static shapes of every tensor ONNX shape inference can resolve (name -> dims)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = [d.dim_value for d in dims]
    return shapes


def _plan(node, weights: dict, shapes: dict) -> dict | None:
    """The rewrite of one Conv, or None when it is not a strided conv over few channels that
    ``space_to_depth_stem`` can express exactly (2-D, group 1, no dilation, explicit pads, the
    same stride s > 1 on both axes, input channels not a multiple of 4, a weight initializer
    and a static input shape)."""
    from onnx import numpy_helper

    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights:
        return None
    a = _attrs(node)
    strides = list(a.get("strides", [1, 1]))
    shape = shapes.get(node.input[0])
    if (shape is None or len(shape) != 4 or shape[1] % 4 == 0 or a.get("group", 1) != 1
            or any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or len(strides) != 2 or strides[0] != strides[1] or strides[0] < 2):
        return None
    s = int(strides[0])
    w = numpy_helper.to_array(weights[node.input[1]])
    _, _, kh, kw = w.shape
    top, left, bottom, right = (list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4]
    _, _, height, width = shape
    out_h = (height + top + bottom - kh) // s + 1
    out_w = (width + left + right - kw) // s + 1
    th, tw = -(-kh // s), -(-kw // s)  # taps of the new kernel
    # negative when the conv never reads the last rows/columns: Pad crops them
    pad_bottom = s * (out_h + th - 1) - height - top
    pad_right = s * (out_w + tw - 1) - width - left
    return {"stride": s, "weight": w, "taps": (th, tw), "pads": [0, 0, top, left, 0, 0, pad_bottom, pad_right]}


def stem_candidates(model) -> list[str]:
    """Names of the Conv nodes ``space_to_depth_stem`` rewrites (see ``_plan``)."""
    weights = {init.name: init for init in model.graph.initializer}
    shapes = _static_shapes(model)
    return [n.name for n in model.graph.node if _plan(n, weights, shapes) is not None]


def space_to_depth_stem(model, names: list[str] | None = None) -> list[str]:
    """Rewrite the Convs in ``names`` (default: ``stem_candidates``) in place; returns the names rewritten.

    For stride s and a K x K kernel: pad the input with zeros (the conv's own padding, extended
    or cropped at the bottom/right so the rows/columns split evenly), SpaceToDepth(s), and a valid
    stride-1 conv whose weight is the kernel zero-extended to s * ceil(K/s) and regrouped in
    SpaceToDepth's channel order (row offset, column offset, channel).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    shapes = _static_shapes(model)
    done, replaced = [], set()
    for node in list(graph.node):
        if names is not None and node.name not in names:
            continue
        plan = _plan(node, weights, shapes)
        if plan is None:
            continue
        s, w, (th, tw) = plan["stride"], plan["weight"], plan["taps"]
        out_ch, in_ch, kh, kw = w.shape
        wide = np.zeros((out_ch, in_ch, s * th, s * tw), w.dtype)
        wide[:, :, :kh, :kw] = w
        # (O, C, th, s, tw, s) -> (O, s_row, s_col, C, th, tw): SpaceToDepth's channel = (row * s + col) * C + c
        regrouped = wide.reshape(out_ch, in_ch, th, s, tw, s).transpose(0, 3, 5, 1, 2, 4)
        regrouped = np.ascontiguousarray(regrouped.reshape(out_ch, s * s * in_ch, th, tw))
        prefix = f"{node.name}_{STEM_PREFIX}"
        replaced.add(node.input[1])
        graph.initializer.extend([numpy_helper.from_array(regrouped, f"{prefix}_weight"),
                                  numpy_helper.from_array(np.array(plan["pads"], np.int64), f"{prefix}_pads")])
        pad = helper.make_node("Pad", [node.input[0], f"{prefix}_pads"], [f"{prefix}_padded"], name=f"{prefix}_pad",
                               mode="constant")
        s2d = helper.make_node("SpaceToDepth", [f"{prefix}_padded"], [f"{prefix}_packed"], name=prefix, blocksize=s)
        node.input[0], node.input[1] = f"{prefix}_packed", f"{prefix}_weight"
        del node.attribute[:]
        node.attribute.extend([helper.make_attribute("kernel_shape", [th, tw]),
                               helper.make_attribute("strides", [1, 1]),
                               helper.make_attribute("pads", [0, 0, 0, 0]),
                               helper.make_attribute("dilations", [1, 1]),
                               helper.make_attribute("group", 1)])
        position = list(graph.node).index(node)
        graph.node.insert(position, s2d)
        graph.node.insert(position, pad)
        done.append(node.name)
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name in replaced - used]:  # the replaced kernels, if unshared
        graph.initializer.remove(init)
    return done
