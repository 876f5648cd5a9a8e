"""`edge-inference train-act`: train an ACT driving policy, write a LeRobot-format checkpoint.

Data (``--data``, one or more): Donkey Car tub v2 folders (e.g. ../shared/data/donkey/data),
``gen-demos`` arrays (.npz), rosbag2 bags (camera/image_raw + vehicle/command [+ vehicle/state])
or LeRobotDataset v3.0 folders (``export-dataset`` output; one camera, state/action [steering, throttle]).
The state input is what the car applied when the frame was taken (see
``models/act/dataset.py``). ``--eval-data`` scores the trained policy on an unseen drive
(first action of each chunk vs the command; constant-mean and hold-previous baselines)
and writes ``metrics.json``. ``--holdout-tail F --gap-s S`` holds out the last F of the
last ``--data`` source (by time) and the S seconds before it; without ``--eval-data`` that
tail is what gets scored, and ``eval --holdout-tail F`` scores the same frames of its bag.

Output (``--out``): config.json, model.safetensors, policy_{pre,post}processor.json +
stats (LeRobot v0.4), edge_inference.json (action names, fps, data, training history),
calibration.npz (real inputs for export/quantize). Runs on CPU or a CUDA GPU (``--device``).

Chunk execution is written into the checkpoint, where the policy node (and LeRobot's
``select_action``) read it: temporal ensembling with ``--temporal-ensemble-coeff`` (default
0.01, ``n_action_steps`` 1), or queue mode with ``--n-action-steps N``. Ensembling is the default
because it drove the ACT best in closed loop: fresher commands than executing several actions
per chunk, and a lower CTE (docs/PERFORMANCE_NOTES_17.md).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_inference.commands.arg_types import finite_float, fraction, non_negative_float, positive_float, positive_int
from edge_inference.core.errors import UsageError
from edge_inference.core.files import Staging

SMALL = {"image_size": (48, 64), "chunk_size": 8, "dim_model": 32, "n_heads": 2, "dim_feedforward": 64,
         "n_encoder_layers": 1, "n_decoder_layers": 1, "epochs": 1}  # --small: a test-sized model
CALIBRATION_BYTES = 32 * 2**20  # cap on calibration.npz image data


#: ACT paper and LeRobot value; drove best in the drive-sim table of docs/PERFORMANCE_NOTES_17.md
DEFAULT_ENSEMBLE_COEFF = 0.01


def chunk_execution(n_action_steps: int | None, coeff: float | None) -> tuple[int, float | None]:
    """(n_action_steps, temporal_ensemble_coeff) for the checkpoint; LeRobot ensembles only with n_action_steps 1.

    Refused here, in one line: ACTConfig raises NotImplementedError for that combination. The chunk-size
    bound is ACTConfig's own check.
    """
    if n_action_steps is not None and n_action_steps > 1:
        if coeff is not None:
            raise UsageError("--temporal-ensemble-coeff needs --n-action-steps 1 (LeRobot ensembles every step); "
                             f"got --n-action-steps {n_action_steps}")
        return n_action_steps, None
    return 1, DEFAULT_ENSEMBLE_COEFF if coeff is None else coeff


def register(subparsers) -> None:
    p = subparsers.add_parser("train-act", help="train the ACT driving policy (LeRobot-format checkpoint)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, help="tub dirs, .npz arrays, rosbag2 dirs and/or LeRobotDataset v3.0 dirs")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--eval-data", nargs="*", default=[], help="unseen drive(s) to score after training")
    p.add_argument("--image-size", type=positive_int, nargs=2, default=None, metavar=("H", "W"),
                   help="model input size (default: as recorded; the car uses 360 640)")
    p.add_argument("--fit", default="resize", choices=["resize", "crop"], help="how frames reach the image size")
    p.add_argument("--chunk-size", type=positive_int, default=32)
    p.add_argument("--n-action-steps", type=positive_int, default=None,
                   help="queue mode: execute N actions per chunk (LeRobot's n_action_steps; default: ensembling)")
    p.add_argument("--temporal-ensemble-coeff", type=finite_float, default=None,
                   help="temporal ensembling weight exp(-coeff*i), oldest chunk i=0 (LeRobot's temporal_ensemble_coeff; "
                        f"default {DEFAULT_ENSEMBLE_COEFF} unless --n-action-steps > 1 is given)")
    p.add_argument("--dim-model", type=positive_int, default=256)
    p.add_argument("--n-heads", type=positive_int, default=8)
    p.add_argument("--dim-feedforward", type=positive_int, default=1024)
    p.add_argument("--n-encoder-layers", type=positive_int, default=4)
    p.add_argument("--n-decoder-layers", type=positive_int, default=1)
    p.add_argument("--use-vae", action="store_true", help="train with the CVAE objective (LeRobot default)")
    p.add_argument("--dropout", type=fraction, default=0.1)
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=1e-4)
    p.add_argument("--val-fraction", type=fraction, default=0.1)
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--state-dropout", type=fraction, default=0.0,
                   help="fraction of training frames with the state input zeroed (as after a pause)")
    p.add_argument("--flip-steering", action="store_true",
                   help="augment: mirror half the frames and negate steering (+steering = left)")
    p.add_argument("--no-state", dest="use_state", action="store_false",
                   help="image-only policy (the state input is ignored): what the camera alone contributes")
    p.add_argument("--holdout-tail", type=fraction, default=None, metavar="FRACTION",
                   help="hold out the last FRACTION of the last --data source's frames (time order) from training")
    p.add_argument("--gap-s", type=non_negative_float, default=None,
                   help="with --holdout-tail: also drop the S seconds before the tail from training (default 10)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only the first N frames of each source, --eval-data too (tests)")
    p.add_argument("--max-steps", type=positive_int, default=None, help="stop after N optimizer steps (tests)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", action="store_true",
                   help="tiny model for tests: 48x64 image, chunk 8, dim 32, 1+1 layers, 1 epoch")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from edge_inference.models.act.checkpoint import load_act, save_act
    from edge_inference.models.act.configuration_act import ACTConfig
    from edge_inference.models.act.training import TrainConfig, train_act

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.small:
        for key, value in SMALL.items():
            if key == "image_size" and args.image_size is not None:
                continue
            setattr(args, key, value)
    image_size = tuple(args.image_size) if args.image_size else None
    n_action_steps, ensemble_coeff = chunk_execution(args.n_action_steps, args.temporal_ensemble_coeff)
    try:
        data, held_out, split = _load_training_data(args, image_size)
        config = ACTConfig(image_size=data.images.shape[1:3], state_dim=data.states.shape[1],
                           action_dim=data.actions.shape[1], action_names=data.action_names, fps=data.fps,
                           chunk_size=args.chunk_size, n_action_steps=n_action_steps,
                           temporal_ensemble_coeff=ensemble_coeff,
                           dim_model=args.dim_model, n_heads=args.n_heads, dim_feedforward=args.dim_feedforward,
                           n_encoder_layers=args.n_encoder_layers, n_decoder_layers=args.n_decoder_layers,
                           use_vae=args.use_vae, n_vae_encoder_layers=min(4, args.n_encoder_layers),
                           dropout=args.dropout, optimizer_lr=args.lr, optimizer_lr_backbone=args.lr,
                           pretrained_backbone_weights=None)
        train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            val_fraction=args.val_fraction, augment=args.augment, device=args.device,
                            seed=args.seed, max_steps=args.max_steps, use_state=args.use_state,
                            flip_steering=args.flip_steering, state_dropout=args.state_dropout)
    except ValueError as err:  # the config's own validation of the options
        raise UsageError(f"{err}") from err
    print(f"train-act: {len(data)} frames from {data.source}, image {config.image_size}, fps {data.fps:.1f}",
          flush=True)
    model, stats, history = train_act(data, config, train, log=lambda s: print(s, flush=True))
    out = Path(args.out)
    provenance = {"data": [str(d) for d in args.data], "frames": len(data), "image_fit": args.fit,
                  "training": {k: v for k, v in vars(train).items()} | {"history": history}}
    if split is not None:
        provenance["holdout"] = {"source": str(args.data[-1]), "test_frames": len(held_out), **split.to_dict()}
    with Staging(out) as stage:  # the previous checkpoint in --out stays until this one has loaded back
        save_act(model, config, stats, stage.dir, extra_metadata=provenance)
        module, _, _ = load_act(stage.dir)  # what the robot will load: checks the saved files too
        _write_calibration(data, stage.path("calibration.npz"))
        if args.eval_data or held_out is not None:
            if args.eval_data:
                metrics = evaluate_drive(module, config, args.eval_data, args.fit, args.limit)
            else:
                metrics = evaluate_demos(module, config, held_out)
                metrics["data"] = [f"{args.data[-1]} (held-out tail {args.holdout_tail:g})"]
            stage.path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
            _print_metrics(metrics)
        size = stage.path("model.safetensors").stat().st_size
        stage.commit()
    n_params = sum(p.numel() for p in module.parameters())
    print(f"wrote {out} ({n_params:,} parameters, model.safetensors {size / 2**20:.1f} MiB)")
    return 0


def _load_training_data(args, image_size):
    """(training demonstrations, held-out tail or None, TailSplit or None) from --data and --holdout-tail."""
    import numpy as np

    from edge_inference.datasets.holdout import DEFAULT_GAP_S, frame_stamps, tail_split
    from edge_inference.models.act.dataset import concatenate, load_any

    if args.holdout_tail is None:
        if args.gap_s is not None:
            raise ValueError("--gap-s needs --holdout-tail")
        return load_any(args.data, image_size, args.fit, args.limit), None, None
    last = load_any([args.data[-1]], image_size, args.fit, args.limit)
    stamps = frame_stamps(args.data[-1])[:args.limit]
    if len(stamps) != len(last):
        raise ValueError(f"{args.data[-1]}: {len(stamps)} frame stamps for {len(last)} frames")
    split = tail_split(stamps, args.holdout_tail, DEFAULT_GAP_S if args.gap_s is None else args.gap_s)
    train_part = last.subset(np.flatnonzero(split.train_mask(stamps)))
    held_out = last.subset(np.flatnonzero(split.test_mask(stamps)))
    parts = [load_any(args.data[:-1], image_size, args.fit, args.limit)] if len(args.data) > 1 else []
    print(f"train-act: held out the last {len(held_out)} frames of {args.data[-1]} and the "
          f"{len(last) - len(held_out) - len(train_part)} frames of the {split.gap_s:g} s before them", flush=True)
    return concatenate(parts + [train_part]), held_out, split


def _write_calibration(data, path: Path, n: int = 64) -> None:
    """Evenly spread real inputs (image (N,3,H,W) [0,1], state (N,S)) for export/quantize."""
    import numpy as np

    per_image = data.images[0].size * 4
    n = max(1, min(n, len(data), CALIBRATION_BYTES // per_image))
    pick = np.unique(np.linspace(0, len(data) - 1, n).astype(int))
    images = data.images[pick].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    np.savez(path, image=images, state=data.states[pick].astype(np.float32))


def evaluate_drive(module, config, paths: list[str], fit: str = "resize", limit: int | None = None,
                   batch: int = 64) -> dict:
    """Score on unseen demonstrations: every frame, first action of the predicted chunk vs the command.

    Baselines: the training action mean (constant) and repeating the previous command
    (the state input). Improvement = 1 - MAE / baseline MAE.
    """
    from edge_inference.models.act.dataset import load_any

    out = evaluate_demos(module, config, load_any(paths, tuple(config.image_size), fit, limit), batch)
    out["data"] = [str(p) for p in paths]
    return out


def evaluate_demos(module, config, data, batch: int = 64) -> dict:
    """`evaluate_drive` on demonstrations already loaded (e.g. a held-out tail)."""
    import numpy as np
    import torch

    preds = []
    with torch.inference_mode():
        for s in range(0, len(data), batch):
            img = torch.from_numpy(data.images[s:s + batch]).permute(0, 3, 1, 2).float() / 255.0
            preds.append(module(img, torch.from_numpy(data.states[s:s + batch]))[:, 0].numpy())
    pred = np.concatenate(preds)  # (N, A)
    target = data.actions
    mean = np.asarray(module.normalize.action_shift.reshape(-1).numpy(), dtype=np.float64)
    names = list(config.action_names)
    out = {"frames": len(data), "per_action": {}}
    for i, name in enumerate(names):
        mae = float(np.mean(np.abs(pred[:, i] - target[:, i])))
        const = float(np.mean(np.abs(mean[i] - target[:, i])))
        hold = float(np.mean(np.abs(data.states[:, i] - target[:, i]))) if data.states.shape[1] > i else None
        out["per_action"][name] = {"mae": mae, "constant_mean_mae": const, "hold_previous_mae": hold,
                                   "improvement_vs_constant": 1.0 - mae / const if const > 0 else None}
    # Right after a pause the state input is 0: what does the policy command there?
    starts = np.flatnonzero(np.r_[True, data.segments[1:] != data.segments[:-1]])
    out["segment_starts"] = {"frames": int(starts.size),
                             "predicted_mean": {n: float(pred[starts, i].mean()) for i, n in enumerate(names)},
                             "commanded_mean": {n: float(target[starts, i].mean()) for i, n in enumerate(names)}}
    return out


def _print_metrics(metrics: dict) -> None:
    print(f"unseen drive {metrics['data']} ({metrics['frames']} frames): first-action MAE")
    for name, m in metrics["per_action"].items():
        improvement = m["improvement_vs_constant"]
        print(f"  {name:9s} ACT {m['mae']:.4f} | constant mean {m['constant_mean_mae']:.4f} | hold previous "
              f"{m['hold_previous_mae']:.4f} | {'' if improvement is None else f'{improvement:+.1%} vs constant'}")
    starts = metrics["segment_starts"]
    print(f"  after {starts['frames']} pauses (state 0): predicted " + ", ".join(
        f"{n} {v:+.2f}" for n, v in starts["predicted_mean"].items()) + " | commanded " + ", ".join(
        f"{n} {v:+.2f}" for n, v in starts["commanded_mean"].items()))
