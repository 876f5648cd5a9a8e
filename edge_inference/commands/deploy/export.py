"""`edge-inference export`: checkpoint -> ONNX (static shapes, BatchNorm folded, metadata inside).

Verifies ONNX Runtime against torch on random inputs and on real inputs (``--samples``
.npz named by model input, ``--dataset donkey:DIR`` for ACT, or the checkpoint's
``calibration.npz``) and exits 1 when max |onnx - torch| exceeds ``--tolerance``
(default 1e-4), leaving any earlier ONNX files untouched. ``--split`` also writes the
Hailo split for ``hailo-compile``: ``npu.onnx`` (FSQ encoder / ACT ResNet backbone) +
``host.onnx`` (FSQ rounding + head / ACT transformer).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from edge_inference.commands.arg_types import non_negative_float
from edge_inference.core.errors import UsageError
from edge_inference.core.files import InputFileError, Staging, read_json


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX and verify it against torch",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint directory (FSQ or ACT)")
    p.add_argument("--out", default=None, help="ONNX path (default: <model>/model.onnx)")
    p.add_argument("--samples", default=None, help=".npz real inputs named by model input")
    p.add_argument("--dataset", default=None, help="donkey:DIR[,DIR] real ACT inputs")
    p.add_argument("--tolerance", type=non_negative_float, default=1e-4)
    p.add_argument("--split", action="store_true", help="also write the Hailo split (npu.onnx + host.onnx)")
    p.set_defaults(func=run)


def _real_samples(args, model_dir: Path, metadata: dict | None):
    from edge_inference.deploy.quantization import load_samples

    if args.samples:
        return load_samples(args.samples)
    if args.dataset and metadata is not None:
        from edge_inference.deploy.calibration_samples import act_donkey_samples

        kind, _, location = args.dataset.partition(":")
        if kind != "donkey":
            raise UsageError(f"--dataset {args.dataset!r}: export takes donkey:DIR for ACT")
        return act_donkey_samples(location.split(","), metadata, limit=8)
    if (model_dir / "calibration.npz").is_file():
        return load_samples(model_dir / "calibration.npz")
    return None


def run(args) -> int:
    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise InputFileError(f"checkpoint folder not found ({model_dir})")
    out = Path(args.out) if args.out else model_dir / "model.onnx"
    config_file = model_dir / "config.json"
    kind = read_json(config_file, "checkpoint config").get("type") if config_file.is_file() else None
    # Written beside the target and moved there only after the parity check: a failed export
    # leaves the deployed model.onnx (and npu/host.onnx) byte-identical.
    from edge_inference.deploy.onnx_export import ExportParityError

    with Staging(out.parent) as stage:
        try:
            result = _export(args, kind, model_dir, stage.path(out.name), stage.dir)
        except ExportParityError as err:
            raise ExportParityError(f"FAIL: {str(err).replace(str(stage.dir), str(out.parent))}; "
                                    f"nothing written, {out} unchanged") from err
        stage.commit()
    real = "n/a (no real samples)" if result.max_abs_diff_real is None else f"{result.max_abs_diff_real:.2e}"
    print(f"PASS: {out} ({result.size_bytes} B); max |onnx - torch|: random {result.max_abs_diff_random:.2e}, "
          f"real {real} (tolerance {args.tolerance:g})")
    for extra in result.extra_paths:
        print(f"  also wrote {out.parent / extra.name}")
    return 0


def _export(args, kind: str | None, model_dir: Path, out: Path, split_dir: Path):
    from edge_inference.deploy.onnx_export import (
        act_metadata,
        export_act_onnx,
        export_fsq_onnx,
        export_fsq_split,
        file_sha256,
        split_at_scope,
    )

    if kind == "fsq_classifier":
        samples = _real_samples(args, model_dir, None)
        result = export_fsq_onnx(model_dir, out, None if samples is None else samples.get("imu"), args.tolerance)
        if args.split:
            result.extra_paths = export_fsq_split(model_dir, split_dir, args.tolerance)
        return result
    from edge_inference.backends.torch import act_runtime
    from edge_inference.models.act.checkpoint import load_act

    module, config, meta = load_act(model_dir)
    runtime = act_runtime(config, meta)
    weights = model_dir / "model.safetensors"
    digest = file_sha256(weights) if weights.is_file() else ""
    samples = _real_samples(args, model_dir, act_metadata(runtime, digest))
    result = export_act_onnx(module, runtime, out, digest, samples, args.tolerance)
    if args.split:  # ResNet backbone on Hailo-8, transformer on ONNX Runtime
        result.extra_paths = split_at_scope(out, split_dir, "backbone", ("image",), "features", args.tolerance)
    return result
