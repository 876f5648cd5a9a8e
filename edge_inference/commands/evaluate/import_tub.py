"""`edge-inference import-tub`: Donkey Car tub v2 folders -> one rosbag2.

Lets Donkey Car users bring their recorded drives here: each record becomes a
camera Image (rgb8) and a manual VehicleCommand stamped with the record's real
time, plus a sensor_msgs/Range when the record has `range/cms`. Records listed
in the manifest's `deleted_indexes` are skipped, as the Donkey tools do. Records
whose steering/throttle are not finite or outside [-1, 1] are skipped and counted
(``--clamp``: out-of-range values are clamped instead), and catalog/image paths that
leave the tub folder are refused. Nothing is written when no record is usable.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from edge_inference.datasets.donkey_tub import import_tubs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-tub", help="convert Donkey Car tub v2 folders to a rosbag2",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tubs", nargs="+", type=Path, metavar="TUB", help="tub v2 folder(s)")
    parser.add_argument("--out", required=True, type=Path, help="new bag folder to write")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--no-compress", dest="compress", action="store_false",
                        help="store raw chunks (default: zstd-compressed)")
    parser.add_argument("--clamp", action="store_true",
                        help="clamp steering/throttle outside [-1, 1] into range (counted) instead of skipping them")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = import_tubs(args.tubs, args.out, args.storage, args.compress, clamp=args.clamp)
    print(f"{args.out}: {summary.as_text()}")
    return 0
