"""`edge-inference import-hapt`: one UCI HAPT recording -> rosbag2 (IMU + label segments).

Lets `edge-inference eval --behavior-model ...` score the behavior classifier on a
held-out user's whole recording, streamed through the behavior node's windower
and smoother like a drive (see edge_inference/evaluation/hapt_bag.py).

    edge-inference import-hapt ../shared/data/hapt --experiment 42 --user 21 \\
        --classes-from models/fsq_hapt --out bags/hapt_exp42_user21
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_inference.commands.arg_types import positive_int
from edge_inference.core.files import InputFileError, read_json, remove_partial


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("import-hapt", help="convert one UCI HAPT recording to a rosbag2 with labels",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="UCI HAPT folder (with RawData/ and activity_labels.txt)")
    p.add_argument("--experiment", type=positive_int, required=True)
    p.add_argument("--user", type=positive_int, required=True)
    p.add_argument("--classes-from", type=Path, required=True,
                   help="model folder whose config.json lists the class names (label order)")
    p.add_argument("--out", type=Path, required=True, help="new bag folder")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_inference.evaluation.hapt_bag import write_hapt_bag

    config = read_json(args.classes_from / "config.json", "model config (--classes-from)")
    names = config.get("class_names") if isinstance(config, dict) else None
    if not isinstance(names, list) or not names:
        raise InputFileError(f"no class_names list in {args.classes_from / 'config.json'}")
    if not (args.root / "RawData").is_dir():
        raise InputFileError(f"not a UCI HAPT folder (no RawData/) ({args.root})")
    if args.out.exists():
        raise FileExistsError(17, "bag path exists already; choose a new one", str(args.out))
    try:
        counts = write_hapt_bag(args.root, args.experiment, args.user, args.out, names, args.storage)
    except BaseException:
        remove_partial(args.out)  # did not exist before: ours, and half-written
        raise
    print(f"{args.out}: {counts['imu_samples']} IMU samples, {counts['labelled_samples']} labelled, "
          f"{counts['label_changes']} label changes")
    return 0
