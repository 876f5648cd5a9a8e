"""`edge-inference train-fsq`: train the FSQ behavior classifier, evaluate on unseen users.

Data: a UCI HAPT directory (raw recordings; default ``../shared/data/hapt``) or a
labelled-windows file (.npz / .csv, see ``datasets/imu_windows.py``). The split is by
user: the test users never appear in training. Writes a checkpoint directory
(``config.json`` + ``model.safetensors``), ``metrics.json`` and, with ``--export``, the
ONNX model (``model.onnx``) verified against torch.

HAPT windows (``--windows``): ``streamed`` (default) cuts every window the behavior
node's windower produces on the whole recordings, every ``--stride`` samples, labelled
by ``evaluation/window_labels.window_label`` (a class covering >= 50 % of the window;
transition / mixed / unlabelled windows are not trained on); ``segments`` cuts only
windows inside one annotated segment (the UCI HAR way).

Evaluation on HAPT test users is always streamed as ``eval`` does it: the node's
windows (stride 25) of each whole recording, the node's smoother, the same labelling
rule; the windows not scored are counted in ``metrics.json`` (``not_scored``).
``--eval CKPT`` scores an existing checkpoint that way without training.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_inference.commands.arg_types import non_negative_float, positive_float, positive_int
from edge_inference.core.errors import UsageError
from edge_inference.core.files import InputFileError, Staging, write_text_atomic

DEFAULT_HAPT = "../shared/data/hapt"
DEFAULT_TEST_USERS = "17,18,19,20,21"


def register(subparsers) -> None:
    p = subparsers.add_parser("train-fsq", help="train the FSQ IMU behavior classifier (split by user)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_HAPT, help="HAPT directory or labelled windows .npz/.csv")
    p.add_argument("--out", default="artifacts/fsq", help="checkpoint directory to write")
    p.add_argument("--activities", default="basic",
                   help="HAPT classes: 'basic' (6 activities), 'all' (12 incl. transitions) or a comma list")
    p.add_argument("--test-users", default=DEFAULT_TEST_USERS, help="comma list of user ids held out")
    p.add_argument("--users", default="", help="restrict to these user ids (comma list; tests use a slice)")
    p.add_argument("--window-length", type=positive_int, default=100)
    p.add_argument("--windows", choices=("streamed", "segments"), default="streamed",
                   help="HAPT training windows: the node's stream (default) or inside segments only")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="training window stride in samples (default: 25 streamed = the node's, 50 segments)")
    p.add_argument("--eval-stride", type=positive_int, default=25, help="test window stride (the behavior node's)")
    p.add_argument("--rotation-deg", type=non_negative_float, default=0.0,
                   help="augmentation: random rotation of accel+gyro, angle up to this (180 = any)")
    p.add_argument("--x-rotation-deg", type=non_negative_float, default=0.0,
                   help="augmentation: random rotation about the device x axis (waist-worn phone: body vertical), "
                        "angle up to this; 360 = 0 or 180 degrees only")
    p.add_argument("--scale-jitter", type=non_negative_float, default=0.1, help="augmentation: per-window gain +/- fraction")
    p.add_argument("--eval", metavar="CKPT", default=None,
                   help="only evaluate this checkpoint on the test users (streamed), write metrics to --out")
    p.add_argument("--sample-rate-hz", type=positive_float, default=None, help="for .csv data without a stored rate")
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--conv-channels", default="32,64,64")
    p.add_argument("--levels", default="8,6,5,5,4")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", action="store_true", help="also write and verify model.onnx")
    p.set_defaults(func=run)


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"expected a comma list of integers, got {text!r}") from None


def load_training_data(args):
    from edge_inference.datasets import hapt
    from edge_inference.datasets.imu_windows import load_labelled_windows

    path = Path(args.data)
    if path.is_dir():
        all_names = list(hapt.read_activity_labels(path).values()) if (path / "activity_labels.txt").is_file() else []
        activities = {"basic": hapt.BASIC_ACTIVITIES, "all": all_names}.get(
            args.activities, [a.strip() for a in args.activities.split(",") if a.strip()])
        users = _ints(args.users) or None
        if args.windows == "streamed":
            return hapt.load_hapt_streamed(path, args.window_length, args.stride or 25, activities, users)
        return hapt.load_hapt_windows(path, args.window_length, args.stride or 50, activities, users)
    if not path.is_file():
        raise InputFileError(f"training data not found ({path})")
    return load_labelled_windows(path, args.sample_rate_hz)


def _streamed_test(args, class_names: list[str]):
    """The test users' streamed windows (HAPT), or None for a windows file."""
    from edge_inference.datasets import hapt

    path = Path(args.data)
    if not path.is_dir():
        return None
    return hapt.load_hapt_streamed(path, args.window_length, args.eval_stride, class_names, _ints(args.test_users))


def run(args) -> int:
    import numpy as np

    from edge_inference.datasets.hapt import BASIC_ACTIVITIES, split_by_user

    data = None if args.eval else load_training_data(args)  # bad data fails here, before torch loads

    from edge_inference.models.fsq import training
    from edge_inference.models.fsq.checkpoint import load_fsq
    from edge_inference.models.fsq.configuration_fsq import FSQConfig

    if args.eval:
        model, config = load_fsq(args.eval)
        test = _streamed_test(args, config.class_names)
        if test is None:
            raise UsageError(f"--eval needs a HAPT directory as --data ({args.data})")
        probs, codes = training.predict(model, training.normalized_inputs(training.window_features(test, config),
                                                                          config))
        report = training.streamed_report(probs, codes, test, config)
        report["split"] = {"test_users": sorted(set(test.users.tolist())), "checkpoint": str(args.eval)}
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "metrics.json", json.dumps(report, indent=2))
        _print_report(report, config.class_names)
        print(f"wrote {out / 'metrics.json'}")
        return 0

    train, test = split_by_user(data, _ints(args.test_users))
    if len(train) == 0 or len(test) == 0:
        raise UsageError(f"split by user left {len(train)} train / {len(test)} test windows "
                         f"(users present: {sorted(set(data.users.tolist()))}, test users: {args.test_users})")
    streamed_test = _streamed_test(args, list(data.class_names))
    if streamed_test is not None:
        test = streamed_test
    print(f"{len(train)} train windows, {int((train.labels >= 0).sum())} labelled "
          f"(users {sorted(set(train.users.tolist()))}), {len(test)} test windows, "
          f"{int((test.labels >= 0).sum())} labelled (users {sorted(set(test.users.tolist()))}), "
          f"classes {data.class_names}")
    try:
        config = FSQConfig(class_names=list(data.class_names), window_length=args.window_length,
                           sample_rate_hz=data.sample_rate_hz, levels=_ints(args.levels),
                           conv_channels=_ints(args.conv_channels))
    except ValueError as err:  # the config's own validation of the options
        raise UsageError(str(err)) from err
    train_features = training.window_features(train, config)
    config = training.fit_normalization(train_features, config)
    del train_features
    train_cfg = training.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                                     seed=args.seed, threads=args.threads, rotation_deg=args.rotation_deg,
                                     x_rotation_deg=args.x_rotation_deg, scale_jitter=args.scale_jitter)
    model = training.train_fsq(train, config, train_cfg)

    test_inputs = training.normalized_inputs(training.window_features(test, config), config)
    probs, codes = training.predict(model, test_inputs)
    labelled_train = train.labels[train.labels >= 0]
    majority = int(np.bincount(labelled_train, minlength=config.num_classes).argmax())
    if streamed_test is not None:
        report = training.streamed_report(probs, codes, test, config, baseline_class=majority)
    else:
        report = training.evaluation_report(probs, codes, test.labels, config, BASIC_ACTIVITIES)
    report["split"] = {"test_users": sorted(set(test.users.tolist())),
                       "train_users": sorted(set(train.users.tolist())),
                       "train_windows": int(len(labelled_train)), "test_windows": len(test),
                       "train_window_cut": data.source.get("windows", "segments") if Path(args.data).is_dir()
                       else "file", "test_window_cut": "streamed" if streamed_test is not None else "file"}
    model.config.provenance = {**data.source, "split": report["split"], "train": vars(train_cfg),
                               "test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"]}
    out = Path(args.out)
    with Staging(out) as stage:  # the previous checkpoint in --out stays until this one is complete
        _write_outputs(args, stage, model, report, test_inputs, test)
        stage.commit()
    _print_report(report, data.class_names)
    print(f"wrote {out}")
    return 0


def _write_outputs(args, stage: Staging, model, report: dict, test_inputs, test) -> None:
    """Checkpoint, metrics, calibration sample and (--export) the verified ONNX, into the staging folder."""
    import numpy as np

    from edge_inference.models.fsq.checkpoint import save_fsq

    save_fsq(model, stage.dir)
    stage.path("metrics.json").write_text(json.dumps(report, indent=2))
    # A small calibration/verification sample of unseen-user inputs, used by export/quantize.
    pick = np.random.default_rng(0).permutation(len(test))[:256]
    np.savez_compressed(stage.path("calibration.npz"), imu=test_inputs[pick], labels=test.labels[pick])
    if args.export:
        from edge_inference.deploy.onnx_export import export_fsq_onnx

        result = export_fsq_onnx(stage.dir, stage.path("model.onnx"), real_inputs=test_inputs[pick])
        print(f"exported {Path(args.out) / 'model.onnx'} (max |onnx - torch| = {result.max_abs_diff:.2e})")


def _print_report(report: dict, class_names: list[str]) -> None:
    print(f"test (unseen users): accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, "
          f"code usage {report['code_usage']['unique_codes']}/{report['code_usage']['codebook_size']} "
          f"perplexity {report['code_usage']['perplexity']:.1f}")
    if "not_scored" in report:
        ns = report["not_scored"]
        print(f"streamed: {report['n']} windows scored (smoothed as the node; per window, unsmoothed: "
              f"{report['per_window_accuracy']:.4f}); not scored: {ns['transition']} transition, "
              f"{ns['mixed']} mixed, {ns['unlabelled']} unlabelled; transitions predicted as "
              f"{ns['transition_predicted_as']}")
        for row in report.get("uncertain_outcome", []):
            print(f"  if 'uncertain' below confidence {row['threshold']:.1f}: {100 * row['covered']:.1f}% of "
                  f"scored windows classified, accuracy on them {_fmt(row['accuracy_covered'])}; "
                  f"{100 * (row['transitions_flagged'] or 0):.1f}% of transition windows flagged")
        for row in report["per_recording"]:
            print(f"  exp {row['experiment']:2d} user {row['user']:2d}: {row['scored_windows']} windows, "
                  f"accuracy {_fmt(row['accuracy'])} (per window {_fmt(row['per_window_accuracy'])})")
    print("confusion matrix (rows true, cols predicted):", *class_names, sep="\n  ")
    for row in report["confusion_matrix"]:
        print("  " + " ".join(f"{v:5d}" for v in row))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
