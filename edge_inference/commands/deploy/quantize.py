"""`edge-inference quantize`: fp32 ONNX -> QDQ int8 ONNX, gated on accuracy against fp32.

Samples (real inputs) come from exactly one source:
  --samples FILE|DIR    .npz (a file or a directory of them) with arrays named by model input
                        (+ ``labels`` for FSQ), e.g. a model dir's calibration.npz
  --dataset hapt:DIR    FSQ: HAPT windows; calibration from training users, evaluation on the
                        held-out users recorded in the model's provenance (default 17-21)
  --dataset donkey:DIR[,DIR]  ACT: Donkey Car tubs
  --bag PATH            ACT: rosbag2 with camera/image_raw + vehicle/state
The first --num-calibration samples calibrate, the rest evaluate. Writes
``model.int8.onnx`` and ``quantize_report.json`` next to the fp32 model; exits 1 and
keeps no int8 model when a gate fails.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_inference.commands.arg_types import non_negative_float, positive_int
from edge_inference.core.errors import UsageError
from edge_inference.core.files import InputFileError


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="int8-quantize an exported ONNX model with an accuracy gate",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory (with model.onnx) or an fp32 .onnx file")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--samples", help=".npz file or directory of .npz samples")
    source.add_argument("--dataset", help="hapt:DIR (FSQ) or donkey:DIR[,DIR] (ACT)")
    source.add_argument("--bag", help="rosbag2 directory (ACT)")
    p.add_argument("--num-calibration", type=positive_int, default=200)
    p.add_argument("--num-eval", type=positive_int, default=400, help="ACT evaluation samples (FSQ: all held-out windows)")
    p.add_argument("--out", default=None, help="int8 model path (default: next to the fp32 model)")
    p.add_argument("--report", default=None, help="report JSON path (default: quantize_report.json beside)")
    p.add_argument("--act-nmae-max", type=non_negative_float, default=0.05)
    p.add_argument("--fsq-acc-drop-max", type=non_negative_float, default=1.0, help="accuracy points")
    p.add_argument("--no-per-channel", action="store_true")
    p.set_defaults(func=run)


def collect_samples(args, metadata: dict) -> tuple[dict, dict]:
    """(calibration, evaluation) samples from the chosen source."""
    from edge_inference.deploy import calibration_samples as cs
    from edge_inference.deploy.quantization import load_samples, split_samples

    if args.samples:
        return split_samples(load_samples(args.samples), args.num_calibration)
    total = args.num_calibration + args.num_eval
    if args.bag:
        return split_samples(cs.act_bag_samples(args.bag, metadata, total), args.num_calibration)
    kind, _, location = args.dataset.partition(":")
    if kind == "hapt" and metadata["model"] == "fsq_classifier":
        test_users = metadata["config"].get("provenance", {}).get("split", {}).get("test_users") or [17, 18, 19, 20, 21]
        from edge_inference.datasets.hapt import available_users

        train_users = [u for u in available_users(location) if u not in test_users]
        calibration = cs.fsq_hapt_samples(location, metadata, train_users, args.num_calibration)
        return calibration, cs.fsq_hapt_samples(location, metadata, test_users)
    if kind == "donkey" and metadata["model"] == "act":
        return split_samples(cs.act_donkey_samples(location.split(","), metadata, total), args.num_calibration)
    raise UsageError(f"--dataset {args.dataset!r} does not fit a {metadata.get('model')!r} model "
                     "(hapt:DIR for FSQ, donkey:DIR for ACT)")


def run(args) -> int:
    from edge_inference.deploy.onnx_export import read_onnx_metadata
    from edge_inference.deploy.quantization import Gates, QuantizationGateError, quantize_with_gate

    model = Path(args.model)
    fp32 = model / "model.onnx" if model.is_dir() else model
    if not fp32.is_file():
        raise InputFileError(f"fp32 ONNX model not found; run `edge-inference export` first ({fp32})")
    out = Path(args.out) if args.out else fp32.with_name("model.int8.onnx")
    report_path = Path(args.report) if args.report else fp32.with_name("quantize_report.json")
    metadata = read_onnx_metadata(fp32)
    calibration, evaluation = collect_samples(args, metadata)
    gates = Gates(act_nmae_max=args.act_nmae_max, fsq_accuracy_drop_max_points=args.fsq_acc_drop_max)
    try:
        report = quantize_with_gate(fp32, out, calibration, evaluation, gates, report_path,
                                    per_channel=not args.no_per_channel)
    except QuantizationGateError as err:
        raise QuantizationGateError(f"FAIL: quantization gate: {err} (report: {report_path}; no int8 model "
                                    f"written, {out} unchanged)") from err
    summary = {k: report[k] for k in ("act", "fsq") if k in report}
    print(json.dumps(summary, indent=2))
    print(f"PASS: wrote {out} ({report['int8_bytes']} B = {100 * report['size_ratio']:.1f}% of fp32), "
          f"report {report_path}")
    return 0
