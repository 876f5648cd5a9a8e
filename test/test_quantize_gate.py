"""int8 quantization with accuracy gates: passes on real calibration, fails on a broken one."""
from __future__ import annotations

import json

import numpy as np
import pytest
from model_fixtures import ACT_RUNTIME, FSQ_HAPT_MODEL, HAPT_ROOT, act_samples
from onnx_models import tiny_act_model

from edge_inference.deploy.onnx_export import read_onnx_metadata
from edge_inference.deploy.quantization import Gates, QuantizationGateError, act_comparison, quantize_with_gate

needs_hapt = pytest.mark.skipif(not HAPT_ROOT.is_dir() or not (FSQ_HAPT_MODEL / "model.onnx").is_file(),
                                reason="needs the committed models/fsq_hapt and the UCI HAPT data in ../shared")


@pytest.fixture(scope="module")
def fsq_samples():
    from edge_inference.deploy.calibration_samples import fsq_hapt_samples

    meta = read_onnx_metadata(FSQ_HAPT_MODEL / "model.onnx")
    calibration = fsq_hapt_samples(HAPT_ROOT, meta, users=list(range(1, 17)), limit=200)  # as `quantize` does
    evaluation = fsq_hapt_samples(HAPT_ROOT, meta, users=[19], limit=300)  # a held-out user
    return calibration, evaluation


@needs_hapt
def test_fsq_int8_passes_the_gate_on_real_calibration(tmp_path, fsq_samples):
    calibration, evaluation = fsq_samples
    report = quantize_with_gate(FSQ_HAPT_MODEL / "model.onnx", tmp_path / "model.int8.onnx", calibration,
                                evaluation, Gates(), tmp_path / "report.json")
    assert report["passed"] and (tmp_path / "model.int8.onnx").is_file()
    fsq = report["fsq"]
    assert fsq["accuracy_drop_points"] <= 1.0 and fsq["agreement"] >= 0.95 and 0 <= fsq["code_agreement"] <= 1
    assert report["size_ratio"] < 0.6
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is True
    quantization = read_onnx_metadata(tmp_path / "model.int8.onnx")["quantization"]
    assert quantization["format"] == "QDQ"
    # the conv reading the IMU input stays float (its uint8 input step blurred SITTING vs STANDING)
    import onnx

    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    first = next(n for n in graph.node if n.op_type == "Conv" and n.name in quantization["float_nodes"])
    assert first.input[0] == graph.input[0].name  # no DequantizeLinear in front of it
    quantized_convs = [n for n in graph.node if n.op_type == "Conv" and n.name not in quantization["float_nodes"]]
    assert quantized_convs and all(any(p.output[0] == n.input[1] and p.op_type == "DequantizeLinear"
                                       for p in graph.node) for n in quantized_convs)


@needs_hapt
def test_fsq_gate_fails_on_a_deliberately_broken_calibration(tmp_path, fsq_samples):
    calibration, evaluation = fsq_samples
    broken = {"imu": calibration["imu"] * 1e-3}  # activation ranges ~1000x too small: everything clips
    with pytest.raises(QuantizationGateError, match="FSQ accuracy drop"):
        quantize_with_gate(FSQ_HAPT_MODEL / "model.onnx", tmp_path / "model.int8.onnx", broken, evaluation,
                           Gates(), tmp_path / "report.json")
    assert not (tmp_path / "model.int8.onnx").exists()  # a failed model is not kept
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is False and report["fsq"]["accuracy_drop_points"] > 1.0


def test_act_gate_uses_normalized_mae_and_fails_on_broken_calibration(tmp_path):
    fp32 = tiny_act_model(tmp_path / "model.onnx", ACT_RUNTIME)
    report = quantize_with_gate(fp32, tmp_path / "model.int8.onnx", act_samples(32, seed=1), act_samples(32, seed=2),
                                Gates(act_nmae_max=0.05))
    assert report["act"]["nmae"] <= 0.05 and report["act"]["cosine_similarity"] > 0.99
    broken = act_samples(32, seed=1)
    broken["image"] = np.zeros_like(broken["image"])  # black frames: no activation range at all
    broken["state"] = np.zeros_like(broken["state"])
    with pytest.raises(QuantizationGateError, match="ACT normalized MAE"):
        quantize_with_gate(fp32, tmp_path / "broken.int8.onnx", broken, act_samples(32, seed=2),
                           Gates(act_nmae_max=0.05))


def test_act_int8_runs_the_rgb_stem_as_space_to_depth(tmp_path):
    import onnx

    from edge_inference.deploy.quantization import ACT_RECIPE

    fp32 = tiny_act_model(tmp_path / "model.onnx", ACT_RUNTIME)
    assert ACT_RECIPE.stem_space_to_depth
    report = quantize_with_gate(fp32, tmp_path / "model.int8.onnx", act_samples(32, seed=1), act_samples(32, seed=2))
    assert report["passed"] and report["act"]["cosine_similarity"] > 0.99
    quantization = read_onnx_metadata(tmp_path / "model.int8.onnx")["quantization"]
    assert quantization["space_to_depth_convs"] == ["/model/backbone/conv1/Conv"]
    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    producers = {out: n for n in graph.node for out in n.output}
    stem = next(n for n in graph.node if n.name == "/model/backbone/conv1/Conv")
    chain = []  # Conv <- DequantizeLinear <- QuantizeLinear <- SpaceToDepth <- Pad <- normalized image
    tensor = stem.input[0]
    while tensor in producers and len(chain) < 6:
        chain.append(producers[tensor].op_type)
        tensor = producers[tensor].input[0]
    assert chain[:4] == ["DequantizeLinear", "QuantizeLinear", "SpaceToDepth", "Pad"]
    weight_dq = producers[stem.input[1]]
    weight = next(i for i in graph.initializer if i.name == weight_dq.input[0])
    assert weight.data_type == onnx.TensorProto.INT8 and weight.dims[1] == 12  # 2 x 2 x RGB channels


def test_act_comparison_metrics():
    rng = np.random.default_rng(0)
    fp32 = rng.standard_normal((10, 8, 2))
    same = act_comparison(fp32, fp32)
    assert same["nmae"] == 0 and same["cosine_similarity"] == pytest.approx(1.0)
    shifted = act_comparison(fp32, fp32 + 0.1 * fp32.reshape(-1, 2).std(axis=0))
    assert shifted["nmae"] == pytest.approx(0.1, rel=1e-6)


def test_act_quantize_command_calibrates_from_a_rosbag(tmp_path):

    from edge_inference.cli import main
    from edge_inference.core import bag_io

    tiny_act_model(tmp_path / "act" / "model.onnx", ACT_RUNTIME)
    store = bag_io.make_typestore()
    command_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleCommand", store)
    frames = act_samples(24, seed=5)["image"]
    with bag_io.BagWriter(tmp_path / "drive", store=store) as writer:
        for i, chw in enumerate(frames):
            ns = 1_000_000_000 + i * 50_000_000
            steering = float(np.sin(i / 4))
            writer.write("/vehicle/command", command_cls(header=bag_io.make_header(ns, "base_link", store),
                                                         steering=steering, throttle=0.3,
                                                         source=command_cls.SOURCE_MANUAL), ns)
            rgb = (chw.transpose(1, 2, 0) * 255).astype(np.uint8)
            writer.write("/camera/image_raw", bag_io.rgb_to_image(rgb, ns + 1, "camera", store), ns + 1)
    assert main(["quantize", "--model", str(tmp_path / "act"), "--bag", str(tmp_path / "drive"),
                 "--num-calibration", "12"]) == 0
    report = json.loads((tmp_path / "act" / "quantize_report.json").read_text())
    assert report["passed"] and report["calibration_samples"] == 12 and report["evaluation_samples"] == 12
    assert (tmp_path / "act" / "model.int8.onnx").is_file()
