"""`edge-inference export-dataset`: rosbag2 drives -> a LeRobotDataset v3.0 (LeRobot 0.4.x).

Takes bags from `record`, `import-tub` or `gen-demos` and writes a folder that
`lerobot-train --dataset.root=OUT --dataset.repo_id=REPO_ID` (and `train-act --data OUT`)
trains on: one camera video, observation.state and action = [steering, throttle].

Frames get their state and action by the same rule as `train-act` (``align_samples`` in
models/act/dataset.py): action = the command stamped nearest the frame, state = the applied
command at/before it (neutral after a pause). Episodes split at pauses longer than --gap and
between bags (sessions). LeRobot stores an integer fps and evenly spaced frames: without
--fps each frame is kept once at the recording's rounded rate (the timing jitter this
hides is reported); with --fps each episode is resampled to that rate (nearest frame),
and the frames dropped / duplicated are reported.

The folder is written beside OUT under a temporary name, checked, then renamed; an
existing OUT is refused. LeRobot itself is not needed (pyarrow + PyAV).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_inference.commands.arg_types import positive_float, positive_int
from edge_inference.core.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export-dataset", help="rosbag2 drives -> LeRobotDataset v3.0 (lerobot-train input)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bags", nargs="+", type=Path, metavar="BAG", help="rosbag2 folder(s); each is its own session")
    p.add_argument("--out", required=True, type=Path, help="new dataset folder (must not exist)")
    p.add_argument("--task", default="drive the track", help="task text stored in meta/tasks.parquet")
    p.add_argument("--repo-id", default=None, help="Hub-style name, e.g. me/rc_car_track (default: local/<out name>)")
    p.add_argument("--fps", type=positive_int, default=None,
                   help="resample every episode to this rate (default: keep every frame, rounded recorded rate)")
    p.add_argument("--gap", type=positive_float, default=1.0, help="a pause longer than this (s) starts a new episode")
    p.add_argument("--camera", default="front", help="camera name: feature observation.images.<camera>")
    p.add_argument("--vcodec", default="libsvtav1", choices=["libsvtav1", "h264"],
                   help="AV1 (SVT-AV1, LeRobot's default) or H.264 (libx264)")
    p.add_argument("--robot-type", default="rc_car")
    p.add_argument("--image-topic", default="camera/image_raw")
    p.add_argument("--command-topic", default="vehicle/command")
    p.add_argument("--state-topic", default="vehicle/state")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_inference.core.bag_io import BagError
    from edge_inference.datasets.lerobot_export import export_bags

    repo_id = args.repo_id or f"local/{args.out.name}"
    try:
        summary = export_bags(args.bags, args.out, args.task, repo_id, args.fps, args.gap, args.camera,
                              args.vcodec, args.robot_type, args.image_topic, args.command_topic, args.state_topic,
                              progress=not args.quiet)
    except (ValueError, BagError) as err:  # a bag without frames/commands, a format check that failed
        raise UsageError(str(err)) from err
    print(f"{args.out}: {summary.as_text()}")
    if args.fps is None and summary.max_timing_error_ms > 1000.0 / summary.fps:
        print(f"warning: within episodes, frames are up to {summary.max_timing_error_ms / 1000:.2f} s off the even "
              f"{summary.fps} fps spacing LeRobot assumes (pauses shorter than --gap {args.gap} s, dropped or "
              f"deleted frames); --fps {summary.fps} resamples to real time", file=sys.stderr)
    print(f"train with: lerobot-train --policy.type=act --dataset.repo_id={repo_id} --dataset.root={args.out}")
    return 0
