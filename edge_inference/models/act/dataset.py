"""Demonstrations for ACT training: Donkey Car tubs, simulator arrays (.npz) and rosbag2 bags.

Every source becomes one ``Demonstrations``: frames resized to the model image size,
the state the car applied when each frame was taken, and the commanded action at that
frame, split into segments (drives / episodes / pauses) that no action chunk crosses.

State convention (shared with ``calibration_samples`` and the eval tools): the state is
the previous frame's command ([steering, throttle]); a segment starts from 0 (nothing
applied yet). Simulator arrays carry their own applied ``states``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_inference.core.files import InputFileError as DatasetError  # data missing, empty or in no known format
from edge_inference.core.files import load_npz as read_npz

GAP_S = 1.0  # a pause longer than this between frames starts a new segment
STD_FLOOR = 1e-3  # a constant feature (e.g. fixed throttle) would otherwise divide by ~0


@dataclass
class Demonstrations:
    images: np.ndarray  # (N, H, W, 3) uint8 RGB at the model image size
    states: np.ndarray  # (N, S) float32, applied when the frame was taken
    actions: np.ndarray  # (N, A) float32, commanded at the frame
    segments: np.ndarray  # (N,) int, consecutive frames of one drive without pauses
    fps: float  # frames per second of the recording
    action_names: list[str]
    source: str  # human-readable origin (paths)

    def __post_init__(self) -> None:
        n = len(self.images)
        for name in ("states", "actions", "segments"):
            if len(getattr(self, name)) != n:
                raise DatasetError(f"demonstrations: {name} has {len(getattr(self, name))} rows for {n} images")
        if n == 0:
            raise DatasetError(f"demonstrations from {self.source} are empty")
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise DatasetError(f"images must be (N, H, W, 3) uint8, got {self.images.shape} {self.images.dtype}")
        for name in ("states", "actions"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise DatasetError(f"demonstrations from {self.source}: {name} contain NaN/Inf")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> "Demonstrations":
        return Demonstrations(self.images[index], self.states[index], self.actions[index], self.segments[index],
                              self.fps, self.action_names, self.source)

    def chunk_index(self, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(N, chunk) indices of each frame's future actions and (N, chunk) bool ``action_is_pad``.

        Past its segment's end a chunk repeats the last action and is marked padded (no loss
        there), as LeRobot pads episodes.
        """
        n = len(self)
        idx = np.arange(n)[:, None] + np.arange(chunk_size)[None]  # (N, chunk)
        last = np.zeros(n, dtype=np.int64)
        ends = np.flatnonzero(np.r_[self.segments[1:] != self.segments[:-1], True])
        starts = np.r_[0, ends[:-1] + 1]
        for s, e in zip(starts, ends):
            last[s:e + 1] = e
        pad = idx > last[:, None]
        return np.minimum(idx, last[:, None]), pad

    def stats(self) -> dict[str, np.ndarray]:
        """Per-channel image mean/std in [0, 1] (3,), state/action mean/std/min/max."""
        sample = self.images[:: max(1, len(self) // 2000)].astype(np.float64) / 255.0  # (n, H, W, 3)
        out = {"image_mean": sample.mean(axis=(0, 1, 2)),
               "image_std": np.maximum(sample.std(axis=(0, 1, 2)), STD_FLOOR)}
        for name in ("states", "actions"):
            x = getattr(self, name).astype(np.float64)
            out[f"{name}_mean"], out[f"{name}_std"] = x.mean(0), np.maximum(x.std(0), STD_FLOOR)
            out[f"{name}_min"], out[f"{name}_max"] = x.min(0), x.max(0)
        return out


def concatenate(parts: list[Demonstrations]) -> Demonstrations:
    """Several sources as one dataset; segment ids stay distinct."""
    if len(parts) == 1:
        return parts[0]
    shapes = {p.images.shape[1:] for p in parts}
    if len(shapes) != 1:
        raise DatasetError(f"demonstrations have different image sizes {shapes}")
    offset, segments = 0, []
    for p in parts:
        segments.append(p.segments + offset)
        offset += int(p.segments.max()) + 1
    fps = float(np.median([p.fps for p in parts]))
    return Demonstrations(np.concatenate([p.images for p in parts]), np.concatenate([p.states for p in parts]),
                          np.concatenate([p.actions for p in parts]), np.concatenate(segments), fps,
                          parts[0].action_names, " + ".join(p.source for p in parts))


def segments_from_stamps(stamps_ns: np.ndarray, sessions: list[str] | None = None, gap_s: float = GAP_S) -> np.ndarray:
    """(N,) segment ids: a new one after a pause > ``gap_s``, a time jump back, or a new session."""
    gaps = np.diff(stamps_ns.astype(np.int64)) / 1e9
    new = (gaps > gap_s) | (gaps < 0)
    if sessions is not None:
        new |= np.asarray(sessions[1:]) != np.asarray(sessions[:-1])
    return np.concatenate([[0], np.cumsum(new)]).astype(np.int64)


def previous_command_state(actions: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """The command of the previous frame, 0 at each segment start."""
    state = np.vstack([np.zeros_like(actions[:1]), actions[:-1]])
    state[np.r_[True, segments[1:] != segments[:-1]]] = 0.0
    return state.astype(np.float32)


def _fps(stamps_ns: np.ndarray, segments: np.ndarray) -> float:
    gaps = np.diff(stamps_ns) / 1e9
    inside = gaps[(segments[1:] == segments[:-1]) & (gaps > 0)]
    return float(1.0 / np.median(inside)) if inside.size else 20.0


def _resize(rgb: np.ndarray, image_size: tuple[int, int] | None, fit: str) -> np.ndarray:
    """(h, w, 3) uint8 -> (H, W, 3) uint8, with the robot's preprocessing (same resize/crop); None: as recorded."""
    from edge_inference.core.preprocess import preprocess_image

    if image_size is None:
        return rgb
    h, w = image_size
    if rgb.shape[:2] == (h, w):
        return rgb
    chw = preprocess_image(rgb, w, h, fit)  # (3, H, W) float [0, 1]
    return np.round(chw.transpose(1, 2, 0) * 255.0).astype(np.uint8)


# ------------------------------------------------------------------------------------- sources
def load_tubs(tubs: list[str | Path], image_size: tuple[int, int] | None, fit: str = "resize",
              limit: int | None = None) -> Demonstrations:
    """Donkey Car tub v2 folders (deleted records skipped) -> demonstrations; ``limit``: first N records."""
    from edge_inference.datasets.donkey_tub import ImportSummary, load_rgb, read_tub

    parts = []
    for tub in tubs:
        records = list(read_tub(Path(tub), ImportSummary()))
        records.sort(key=lambda r: r.stamp_ns)
        if limit is not None:
            records = records[:limit]
        if len(records) < 2:
            raise DatasetError(f"tub {tub} holds fewer than 2 usable records")
        stamps = np.array([r.stamp_ns for r in records], dtype=np.int64)
        segments = segments_from_stamps(stamps, [r.session for r in records])
        actions = np.array([[r.angle, r.throttle] for r in records], dtype=np.float32)
        images = np.stack([_resize(load_rgb(r.image_path), image_size, fit) for r in records])
        parts.append(Demonstrations(images, previous_command_state(actions, segments), actions, segments,
                                    _fps(stamps, segments), ["steering", "throttle"], str(tub)))
    return concatenate(parts)


def load_npz(path: str | Path, image_size: tuple[int, int] | None, fit: str = "resize") -> Demonstrations:
    """``gen-demos`` arrays: images (N,H,W,3) uint8, states (N,S), actions (N,A), episode_index (N,), fps."""
    data = read_npz(path, what="demonstrations (.npz)")
    missing = [k for k in ("images", "states", "actions") if k not in data]
    if missing:
        raise DatasetError(f"{path}: missing array(s) {missing} (have {sorted(data)}); expected the "
                           f"gen-demos format images/states/actions[/episode_index/fps/action_names]")
    images = data["images"]
    if len(images) == 0:
        raise DatasetError(f"{path}: no frames")
    states, actions = data["states"].astype(np.float32), data["actions"].astype(np.float32)
    segments = data["episode_index"].astype(np.int64) if "episode_index" in data else \
        np.zeros(len(images), np.int64)
    fps = float(data["fps"]) if "fps" in data else 20.0
    names = [str(n) for n in data["action_names"]] if "action_names" in data else \
        ["steering", "throttle"][:actions.shape[1]]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DatasetError(f"{path}: images must be (N, H, W, 3) RGB, got {images.shape}")
    images = np.stack([_resize(np.ascontiguousarray(im, dtype=np.uint8), image_size, fit) for im in images])
    return Demonstrations(images, states, actions, segments, fps, names, str(path))


@dataclass
class AlignedSamples:
    """Camera frames of one recording with the state and action each frame is trained on.

    The one alignment rule, shared by ``train-act`` (``load_bag``) and ``export-dataset``:
    frames in header-stamp order; action = the command stamped nearest the frame; state =
    the latest ``vehicle/state`` stamped at or before the frame when the bag has one for
    every frame, else the previous frame's command, 0 (neutral) at each segment start;
    segments split at pauses > ``gap_s`` and time jumps back.
    """

    stamps_ns: np.ndarray  # (N,) int64 frame header stamps, ascending
    order: np.ndarray  # (N,) int64: sample i is the order[i]-th image message as read
    states: np.ndarray  # (N, 2) float32 [steering, throttle] applied at the frame
    actions: np.ndarray  # (N, 2) float32 [steering, throttle] commanded at the frame
    segments: np.ndarray  # (N,) int64 segment ids from 0
    state_source: str  # "vehicle/state" or "previous command"

    def __len__(self) -> int:
        return len(self.stamps_ns)

    @property
    def fps(self) -> float:
        return _fps(self.stamps_ns, self.segments)


def align_samples(frame_t, cmd_t, cmd, state_t=(), state=(), gap_s: float = GAP_S) -> AlignedSamples:
    """Frame stamps (ns, message order), command stamps + [steering, throttle], optional
    applied-state stamps + values -> ``AlignedSamples`` (see its docstring for the rule)."""
    if len(frame_t) < 1 or len(cmd_t) < 1:
        raise DatasetError(f"alignment needs frames and commands (got {len(frame_t)} frames, {len(cmd_t)} commands)")
    order = np.argsort(np.asarray(frame_t, np.int64), kind="stable")
    frames = np.asarray(frame_t, np.int64)[order]
    cmd_t_arr, cmd_arr = np.asarray(cmd_t, np.int64), np.asarray(cmd, np.float32).reshape(len(cmd_t), -1)
    c_order = np.argsort(cmd_t_arr, kind="stable")
    cmd_t_arr, cmd_arr = cmd_t_arr[c_order], cmd_arr[c_order]
    right = np.clip(np.searchsorted(cmd_t_arr, frames), 0, len(cmd_t_arr) - 1)
    left = np.clip(right - 1, 0, len(cmd_t_arr) - 1)
    nearest = np.where(np.abs(cmd_t_arr[left] - frames) <= np.abs(cmd_t_arr[right] - frames), left, right)
    actions = cmd_arr[nearest]
    segments = segments_from_stamps(frames, gap_s=gap_s)
    states, source = previous_command_state(actions, segments), "previous command"
    if len(state_t):
        s_order = np.argsort(np.asarray(state_t, np.int64), kind="stable")
        state_t_arr = np.asarray(state_t, np.int64)[s_order]
        state_arr = np.asarray(state, np.float32).reshape(len(state_t), -1)[s_order]
        at_or_before = np.searchsorted(state_t_arr, frames, side="right") - 1  # (N,), -1: none yet
        if np.all(at_or_before >= 0):
            states, source = state_arr[at_or_before], "vehicle/state"
    return AlignedSamples(frames, order.astype(np.int64), states.astype(np.float32), actions.astype(np.float32),
                          segments, source)


def read_bag_alignment(path: str | Path, image_topic: str = "camera/image_raw",
                       command_topic: str = "vehicle/command", state_topic: str = "vehicle/state",
                       gap_s: float = GAP_S, on_image=None) -> AlignedSamples:
    """One pass over a rosbag2: stamps of camera frames, commands and applied states -> ``align_samples``.

    ``on_image(msg)`` is called with each image message in read order (``load_bag`` keeps
    the frames; ``export-dataset`` reads only stamps here and the frames in a second pass).
    """
    from edge_inference.core.bag_io import read_bag, stamp_ns

    image, command = image_topic.lstrip("/"), command_topic.lstrip("/")
    frame_t, cmd_t, cmd, state_t, state = [], [], [], [], []
    for m in read_bag(path, topics=[image, command, state_topic.lstrip("/")]):
        topic, t = m.topic.lstrip("/"), stamp_ns(m.msg.header)
        if topic == image:
            frame_t.append(t)
            if on_image is not None:
                on_image(m.msg)
        elif topic == command:
            cmd_t.append(t)
            cmd.append([float(m.msg.steering), float(m.msg.throttle)])
        else:
            state_t.append(t)
            state.append([float(m.msg.steering), float(m.msg.throttle)])
    if len(frame_t) < 2 or not cmd:
        raise DatasetError(f"bag {path}: needs {image_topic} frames and {command_topic} commands "
                         f"(found {len(frame_t)} frames, {len(cmd)} commands)")
    return align_samples(frame_t, cmd_t, cmd, state_t, state, gap_s)


def load_bag(path: str | Path, image_size: tuple[int, int] | None, fit: str = "resize",
             image_topic: str = "camera/image_raw", command_topic: str = "vehicle/command",
             state_topic: str = "vehicle/state") -> Demonstrations:
    """rosbag2 (MCAP or sqlite3): each camera frame with the nearest command as its action.

    The state is the latest ``vehicle/state`` [steering, throttle] stamped at or before the
    frame (header stamps, not log order) when the bag has it, else the previous frame's command
    (``align_samples``, shared with ``export-dataset``).
    """
    from edge_inference.core.bag_io import image_to_rgb

    frames = []
    aligned = read_bag_alignment(path, image_topic, command_topic, state_topic,
                                 on_image=lambda msg: frames.append(_resize(image_to_rgb(msg), image_size, fit)))
    return Demonstrations(np.stack([frames[i] for i in aligned.order]), aligned.states, aligned.actions,
                          aligned.segments, aligned.fps, ["steering", "throttle"], str(path))


def load_any(paths: list[str | Path], image_size: tuple[int, int] | None, fit: str = "resize",
             limit: int | None = None) -> Demonstrations:
    """Dispatch on what each path is: tub folder (manifest.json), .npz, rosbag2 (metadata.yaml / .mcap / .db3)
    or LeRobotDataset v3.0 folder (meta/info.json, e.g. written by ``export-dataset``)."""
    parts = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DatasetError(f"training data not found ({p})")
        if p.is_dir() and (p / "manifest.json").is_file():
            parts.append(load_tubs([p], image_size, fit, limit))
        elif p.suffix == ".npz":
            parts.append(load_npz(p, image_size, fit))
        elif (p.is_dir() and (p / "metadata.yaml").is_file()) or p.suffix in (".mcap", ".db3"):
            parts.append(load_bag(p, image_size, fit))
        elif p.is_dir() and (p / "meta" / "info.json").is_file():
            from edge_inference.datasets.lerobot_v3 import load_lerobot_v3

            parts.append(load_lerobot_v3(p, image_size, fit))
        else:
            raise DatasetError(f"{p}: not a Donkey tub (manifest.json), .npz arrays, a rosbag2 bag (metadata.yaml) "
                               f"or a LeRobotDataset v3.0 (meta/info.json)")
        if limit is not None and not (p.is_dir() and (p / "manifest.json").is_file()):
            parts[-1] = parts[-1].subset(np.arange(min(limit, len(parts[-1]))))
    return concatenate(parts)
