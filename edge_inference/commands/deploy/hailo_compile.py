"""`edge-inference hailo-compile`: NPU part of a split model -> HEF for Hailo-8 (Dataflow Compiler).

Runs where Hailo's Dataflow Compiler (``hailo_sdk_client``, x86 Linux, from Hailo's
developer zone) is installed; elsewhere it stops with a clear message. Flow:
``ClientRunner(hw_arch)`` -> ``translate_onnx_model`` (``npu.onnx`` from ``export --split``,
start/end nodes = its input/output) -> ``optimize`` with real calibration samples in NHWC
-> ``compile`` -> ``model.hef`` + ``model.hef.json`` (metadata: which inputs go to the NPU,
which host ONNX model (``host.onnx``) finishes the computation).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge_inference.commands.arg_types import positive_int
from edge_inference.core.errors import ToolMissing
from edge_inference.core.files import InputFileError, Staging
from edge_inference.deploy.hailo import hailo_sidecar, producer_nodes, to_nhwc


def register(subparsers) -> None:
    p = subparsers.add_parser("hailo-compile", help="compile the NPU part of a model to a Hailo-8 HEF",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory with npu.onnx (+ host.onnx)")
    p.add_argument("--samples", default=None, help="calibration .npz (default: <model>/calibration.npz)")
    p.add_argument("--hw-arch", default="hailo8")
    p.add_argument("--num-calibration", type=positive_int, default=200)
    p.set_defaults(func=run)


def run(args) -> int:
    from edge_inference.deploy.onnx_export import read_onnx_metadata
    from edge_inference.deploy.quantization import load_samples

    model_dir = Path(args.model)
    npu_onnx = model_dir / "npu.onnx"
    if not npu_onnx.is_file():
        raise InputFileError(f"{npu_onnx.name} not found; run `edge-inference export --model {model_dir} --split` "
                             f"first ({npu_onnx})")
    meta = read_onnx_metadata(npu_onnx)
    samples_path = Path(args.samples) if args.samples else model_dir / "calibration.npz"
    samples = load_samples(samples_path)
    if "npu_inputs" not in meta or next(iter(meta["npu_inputs"]), None) not in samples:
        raise InputFileError(f"{npu_onnx} is not the NPU part of a split model or the samples lack its input "
                             f"(npu_inputs {meta.get('npu_inputs')}, samples {sorted(samples)})")
    try:
        from hailo_sdk_client import ClientRunner
    except ImportError:
        raise ToolMissing("Hailo Dataflow Compiler (hailo_sdk_client) is not installed here. It runs on an x86 "
                          "Linux host with Hailo's DFC wheel; copy the model directory there and run this command "
                          "again.") from None
    input_name = next(iter(meta["npu_inputs"]))
    calib = to_nhwc(np.asarray(samples[input_name][:args.num_calibration], dtype=np.float32))
    runner = ClientRunner(hw_arch=args.hw_arch)
    runner.translate_onnx_model(str(npu_onnx), model_dir.name, start_node_names=[input_name],
                                end_node_names=producer_nodes(npu_onnx, list(meta["npu_outputs"])),
                                net_input_shapes={input_name: meta["npu_inputs"][input_name]})
    runner.optimize(calib)
    hef = runner.compile()
    hef_path = model_dir / "model.hef"
    host = "host.onnx" if (model_dir / "host.onnx").is_file() else None
    with Staging(model_dir) as stage:  # HEF and its sidecar replace the previous pair together
        stage.path("model.hef").write_bytes(hef)
        stage.path("model.hef.json").write_text(json.dumps(hailo_sidecar(meta, host), indent=2))
        stage.commit()
    print(f"wrote {hef_path} ({len(hef)} B) calibrated on {len(calib)} samples; verify on the robot with "
          f"`edge-inference hailo-verify --model {model_dir}`")
    return 0
