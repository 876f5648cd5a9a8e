"""`edge-inference hailo-verify`: on the robot, compare the HEF (hailo backend) with ONNX Runtime.

Runs both backends of one model directory on real samples (``--samples`` .npz, default
``<model>/calibration.npz``) and reports max |diff|, and for FSQ the class agreement and
FSQ code agreement, for ACT the action NMAE. Exits 1 below ``--min-agreement`` (FSQ) or
above ``--max-nmae`` (ACT).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np

from edge_inference.commands.arg_types import non_negative_float, positive_int, probability
from edge_inference.core.errors import CheckFailed, ToolMissing
from edge_inference.core.files import InputFileError, write_text_atomic


def register(subparsers) -> None:
    p = subparsers.add_parser("hailo-verify", help="compare HEF outputs with ONNX Runtime on real samples",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory with model.hef(.json) and model.onnx")
    p.add_argument("--samples", default=None)
    p.add_argument("--limit", type=positive_int, default=200)
    p.add_argument("--min-agreement", type=probability, default=0.98, help="FSQ class agreement")
    p.add_argument("--max-nmae", type=non_negative_float, default=0.05, help="ACT action NMAE")
    p.add_argument("--json", default=None, help="write the report here")
    p.set_defaults(func=run)


def compare_backends(reference, candidate, samples: dict[str, np.ndarray], limit: int) -> dict:
    """Run both backends on up to ``limit`` samples; FSQ/ACT-specific agreement metrics."""
    from edge_inference.deploy.quantization import act_comparison, fsq_comparison

    names = list(reference.metadata["inputs"])
    n = min(limit, min(len(samples[k]) for k in names))
    ref_out, cand_out = [], []
    for i in range(n):
        inputs = {k: np.asarray(samples[k][i:i + 1], dtype=np.float32) for k in names}
        ref_out.append(reference.run(inputs))
        cand_out.append(candidate.run(inputs))
    stacked_ref = [np.concatenate([o[j] for o in ref_out]) for j in range(len(ref_out[0]))]
    stacked_cand = [np.concatenate([o[j] for o in cand_out]) for j in range(len(cand_out[0]))]
    report = {"samples": n, "max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(stacked_ref, stacked_cand))}
    if reference.metadata["model"] == "act":
        report["act"] = act_comparison(stacked_ref[0], stacked_cand[0])
    else:
        labels = samples.get("labels")
        report["fsq"] = fsq_comparison((stacked_ref[0], stacked_ref[1]), (stacked_cand[0], stacked_cand[1]),
                                       None if labels is None else np.asarray(labels)[:n])
    return report


def run(args) -> int:
    from edge_inference.backends import BackendError, create_backend
    from edge_inference.deploy.quantization import load_samples

    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise InputFileError(f"model folder not found ({model_dir})")
    reference = create_backend("onnxruntime", model_dir)
    samples = load_samples(args.samples or model_dir / "calibration.npz")
    try:
        hailo = create_backend("hailo", model_dir)
    except BackendError as err:
        if importlib.util.find_spec("hailo_platform") is None:  # not the robot: HailoRT is not installed
            raise ToolMissing(str(err)) from err
        raise
    try:
        report = compare_backends(reference, hailo, samples, args.limit)
    finally:
        hailo.close()
    if "act" in report:
        ok = report["act"]["nmae"] <= args.max_nmae
    else:
        ok = report["fsq"]["agreement"] >= args.min_agreement
    report["passed"] = bool(ok)
    text = json.dumps(report, indent=2)
    if args.json:
        write_text_atomic(args.json, text)
    print(text)
    if not ok:
        raise CheckFailed("FAIL: HEF outputs disagree with ONNX Runtime beyond the threshold")
    print("PASS")
    return 0
