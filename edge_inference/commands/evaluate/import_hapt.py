"""`edge-inference import-hapt`: one UCI HAPT recording -> rosbag2 (IMU + label segments).

Lets `edge-inference eval --behavior-model ...` score the behavior classifier on a
held-out user's whole recording, streamed through the behavior node's windower
and smoother like a drive (see edge_inference/evaluation/hapt_bag.py).

    edge-inference import-hapt ../shared/data/hapt --experiment 42 --user 21 \\
        --classes-from models/fsq_hapt --out bags/hapt_exp42_user21
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("import-hapt", help="convert one UCI HAPT recording to a rosbag2 with labels",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="UCI HAPT folder (with RawData/ and activity_labels.txt)")
    p.add_argument("--experiment", type=int, required=True)
    p.add_argument("--user", type=int, required=True)
    p.add_argument("--classes-from", type=Path, required=True,
                   help="model folder whose config.json lists the class names (label order)")
    p.add_argument("--out", type=Path, required=True, help="new bag folder")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_inference.core.bag_io import BagError
    from edge_inference.evaluation.hapt_bag import write_hapt_bag

    config = args.classes_from / "config.json"
    try:
        names = list(json.loads(config.read_text())["class_names"])
        counts = write_hapt_bag(args.root, args.experiment, args.user, args.out, names, args.storage)
    except (OSError, KeyError, ValueError, BagError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: {counts['imu_samples']} IMU samples, {counts['labelled_samples']} labelled, "
          f"{counts['label_changes']} label changes")
    return 0
