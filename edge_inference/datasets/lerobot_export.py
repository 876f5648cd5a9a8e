"""rosbag2 drives -> LeRobotDataset v3.0: the library behind `edge-inference export-dataset`.

Each bag is read twice: stamps first (``read_bag_alignment``, the alignment train-act uses),
then the frames, streamed in written order straight into the encoder. Episodes are the
alignment's segments (pauses > gap) and never span two bags (sessions). Without ``fps`` every
frame is written once at the rounded recorded rate; with ``fps`` each episode is resampled to
that rate (nearest frame) and the frames dropped / duplicated are counted. The folder is
written beside the target, checked (``check_dataset``), then renamed.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ExportSummary:
    bags: int = 0
    source_frames: int = 0  # camera frames aligned in the bags
    frames: int = 0  # frames written
    episodes: int = 0
    fps: int = 0
    recorded_fps: float = 0.0
    dropped: int = 0  # source frames not written (resampling)
    duplicated: int = 0  # extra copies of source frames (resampling)
    max_timing_error_ms: float = 0.0  # written timestamp vs the frame's real time, within its episode
    duration_s: float = 0.0  # recorded driving time the episodes cover (first to last frame, + 1 period each)
    state_source: list[str] = field(default_factory=list)
    seconds: float = 0.0
    bytes: int = 0
    codec: str = ""

    def as_text(self) -> str:
        per_min = 60.0 / self.duration_s if self.duration_s > 0 else float("nan")
        return (f"{self.frames} frames in {self.episodes} episodes at {self.fps} fps from {self.source_frames} "
                f"frames of {self.bags} bag(s) (recorded {self.recorded_fps:.2f} fps); resampling dropped "
                f"{self.dropped}, duplicated {self.duplicated}; max timing error {self.max_timing_error_ms:.1f} ms; "
                f"{self.duration_s / 60:.2f} min of driving, {self.bytes / 2**20:.2f} MiB "
                f"({self.bytes / 2**20 * per_min:.2f} MiB/min), {self.seconds:.1f} s "
                f"({self.seconds * per_min:.1f} s/min); video {self.codec}; state from {', '.join(self.state_source)}")


def resample(stamps_ns: np.ndarray, fps: float) -> np.ndarray:
    """Indices into one episode's frames, one per 1/fps tick from its first frame up to its last (nearest frame)."""
    t = (stamps_ns - stamps_ns[0]) / 1e9
    n = int(np.floor(t[-1] * fps + 1e-6)) + 1  # no tick after the last recorded frame
    ticks = np.arange(n) / fps
    right = np.clip(np.searchsorted(t, ticks), 0, len(t) - 1)
    left = np.clip(right - 1, 0, len(t) - 1)
    return np.where(np.abs(t[left] - ticks) <= np.abs(t[right] - ticks), left, right)


def plan_episodes(aligned, fps: int, resampled: bool) -> list[np.ndarray]:
    """Per episode (segment), the aligned-sample positions written, in order."""
    seg = aligned.segments
    bounds = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1], True])
    plans = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        pos = np.arange(s, e)
        if resampled:
            pos = pos[resample(aligned.stamps_ns[s:e], fps)]
        plans.append(pos)
    return plans


class _FrameFeeder:
    """Frames of one bag in the order they are written: a second pass over its image messages,
    decoding only needed frames and holding only those that arrive before their turn."""

    def __init__(self, bag: Path, image_topic: str, aligned, uses: np.ndarray):
        from edge_inference.core.bag_io import read_bag

        self._messages = (m.msg for m in read_bag(bag, topics=[image_topic.lstrip("/")]))
        self._position = np.empty(len(aligned), np.int64)
        self._position[aligned.order] = np.arange(len(aligned))  # message number -> aligned position
        self._uses = uses.copy()  # aligned position -> times still to be written
        self._read = 0
        self._held: dict[int, np.ndarray] = {}

    def get(self, pos: int) -> np.ndarray:
        from edge_inference.core.bag_io import image_to_rgb

        while pos not in self._held:
            try:
                msg = next(self._messages)
            except StopIteration:
                raise ValueError(f"bag ended before aligned frame {pos}: the second read differs from the first")
            p = int(self._position[self._read])
            self._read += 1
            if self._uses[p] > 0:
                self._held[p] = image_to_rgb(msg)
        self._uses[pos] -= 1
        return self._held[pos] if self._uses[pos] > 0 else self._held.pop(pos)


def export_bags(bags: list[Path], out: Path, task: str, repo_id: str, fps: int | None = None, gap_s: float = 1.0,
                camera: str = "front", vcodec: str = "libsvtav1", robot_type: str | None = "rc_car",
                image_topic: str = "camera/image_raw", command_topic: str = "vehicle/command",
                state_topic: str = "vehicle/state", progress: bool = True) -> ExportSummary:
    """Write ``out`` (must not exist) from ``bags``; returns the summary. Raises ValueError on bad input."""
    from edge_inference.core.bag_io import image_to_rgb
    from edge_inference.datasets import lerobot_v3 as lr
    from edge_inference.models.act.dataset import read_bag_alignment

    lr.require_libraries()
    start = time.monotonic()
    summary = ExportSummary(bags=len(bags), codec=vcodec)
    out = Path(out)
    if out.exists():
        raise lr.LeRobotFormatError(f"{out} already exists; refusing to overwrite it")
    first_shape: list[tuple[int, ...]] = []

    def note_shape(msg) -> None:
        if not first_shape:
            first_shape.append(image_to_rgb(msg).shape)

    alignments = []
    for bag in bags:
        aligned = read_bag_alignment(bag, image_topic, command_topic, state_topic, gap_s, on_image=note_shape)
        alignments.append(aligned)
        summary.source_frames += len(aligned)
        if aligned.state_source not in summary.state_source:
            summary.state_source.append(aligned.state_source)
    summary.recorded_fps = float(np.median([a.fps for a in alignments]))
    summary.fps = int(fps) if fps else lr.nominal_fps(summary.recorded_fps)
    plans = [plan_episodes(a, summary.fps, resampled=bool(fps)) for a in alignments]
    total = sum(len(p) for ps in plans for p in ps)
    height, width = first_shape[0][:2]

    tmp = lr.staging_dir(out)
    try:
        writer = lr.LeRobotV3Writer(tmp, summary.fps, camera, (height, width), ["steering", "throttle"], task,
                                    robot_type, vcodec)
        done, last_print = 0, 0.0
        for bag, aligned, episodes in zip(bags, alignments, plans):
            uses = np.bincount(np.concatenate(episodes), minlength=len(aligned))
            summary.dropped += int(np.sum(uses == 0))
            summary.duplicated += int(np.sum(np.maximum(uses - 1, 0)))
            feeder = _FrameFeeder(bag, image_topic, aligned, uses)
            for pos in episodes:
                stamps = aligned.stamps_ns[pos]
                written = np.arange(len(pos)) / summary.fps
                real = (stamps - stamps[0]) / 1e9
                summary.max_timing_error_ms = max(summary.max_timing_error_ms,
                                                  float(np.max(np.abs(written - real))) * 1e3)
                summary.duration_s += real[-1] + 1.0 / summary.fps  # recorded time the episode covers

                def frames(pos=pos, feeder=feeder):
                    nonlocal done, last_print
                    for p in pos:
                        yield feeder.get(int(p))
                        done += 1
                        now = time.monotonic()
                        if progress and now - last_print > 2.0:
                            last_print = now
                            rate = done / max(now - start, 1e-6)
                            print(f"\rexport-dataset: {done}/{total} frames ({rate:.0f} frames/s)", end="",
                                  file=sys.stderr, flush=True)

                writer.add_episode(frames(), aligned.states[pos], aligned.actions[pos])
        writer.finish()
        if progress and done:
            print(file=sys.stderr)
        summary.frames, summary.episodes = writer.total, len(writer.episodes)
        (tmp / "meta" / "edge_inference.json").write_text(json.dumps({
            "repo_id": repo_id, "sources": [str(b) for b in bags], "gap_s": gap_s, "resampled": bool(fps),
            "alignment": "models/act/dataset.py align_samples (action: nearest command; state: applied at/before)",
            "summary": asdict(summary)}, indent=2) + "\n")
        problems = lr.check_dataset(tmp)
        if problems:
            raise lr.LeRobotFormatError("written dataset failed its check: " + "; ".join(problems))
        summary.bytes = lr.folder_size(tmp)
        summary.seconds = time.monotonic() - start
        lr.commit_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
