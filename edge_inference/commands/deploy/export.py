"""`edge-inference export`: checkpoint -> ONNX (static shapes, BatchNorm folded, metadata inside).

Verifies ONNX Runtime against torch on random inputs and on real inputs (``--samples``
.npz named by model input, ``--dataset donkey:DIR`` for ACT, or the checkpoint's
``calibration.npz``) and exits 1 when max |onnx - torch| exceeds ``--tolerance``
(default 1e-4). ``--split`` also writes the Hailo split for ``hailo-compile``: ``npu.onnx`` (FSQ encoder /
ACT ResNet backbone) + ``host.onnx`` (FSQ rounding + head / ACT transformer).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX and verify it against torch",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint directory (FSQ or ACT)")
    p.add_argument("--out", default=None, help="ONNX path (default: <model>/model.onnx)")
    p.add_argument("--samples", default=None, help=".npz real inputs named by model input")
    p.add_argument("--dataset", default=None, help="donkey:DIR[,DIR] real ACT inputs")
    p.add_argument("--tolerance", type=float, default=1e-4)
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
            raise SystemExit(f"error: --dataset {args.dataset!r}: export takes donkey:DIR for ACT")
        return act_donkey_samples(location.split(","), metadata, limit=8)
    if (model_dir / "calibration.npz").is_file():
        return load_samples(model_dir / "calibration.npz")
    return None


def run(args) -> int:
    import json

    from edge_inference.deploy.onnx_export import (
        ExportParityError,
        act_metadata,
        export_act_onnx,
        export_fsq_onnx,
        export_fsq_split,
        file_sha256,
        split_at_scope,
    )

    model_dir = Path(args.model)
    out = Path(args.out) if args.out else model_dir / "model.onnx"
    config_file = model_dir / "config.json"
    kind = json.loads(config_file.read_text()).get("type") if config_file.is_file() else None
    try:
        if kind == "fsq_classifier":
            samples = _real_samples(args, model_dir, None)
            result = export_fsq_onnx(model_dir, out, None if samples is None else samples.get("imu"), args.tolerance)
            if args.split:
                result.extra_paths = export_fsq_split(model_dir, out.parent, args.tolerance)
        else:
            from edge_inference.backends.torch import act_runtime
            from edge_inference.models.act.checkpoint import load_act

            module, config, meta = load_act(model_dir)
            runtime = act_runtime(config, meta)
            weights = model_dir / "model.safetensors"
            digest = file_sha256(weights) if weights.is_file() else ""
            samples = _real_samples(args, model_dir, act_metadata(runtime, digest))
            result = export_act_onnx(module, runtime, out, digest, samples, args.tolerance)
            if args.split:  # ResNet backbone on Hailo-8, transformer on ONNX Runtime
                result.extra_paths = split_at_scope(out, out.parent, "backbone", ("image",), "features",
                                                    args.tolerance)
    except ExportParityError as err:
        print(f"FAIL: {err}")
        return 1
    real = "n/a (no real samples)" if result.max_abs_diff_real is None else f"{result.max_abs_diff_real:.2e}"
    print(f"PASS: {result.path} ({result.size_bytes} B); max |onnx - torch|: random {result.max_abs_diff_random:.2e}, "
          f"real {real} (tolerance {args.tolerance:g})")
    for extra in result.extra_paths:
        print(f"  also wrote {extra}")
    return 0
