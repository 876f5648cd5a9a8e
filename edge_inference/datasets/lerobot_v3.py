"""LeRobotDataset v3.0 (LeRobot 0.4.x) written and read without LeRobot: pyarrow + PyAV only.

Layout (as LeRobot 0.4.4's ``datasets/utils.py`` and ``lerobot_dataset.py`` write it)::

    meta/info.json                                   codebase_version "v3.0", fps (int), features, paths
    meta/stats.json                                  per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                               pandas frame: index = task text, column task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode (lengths, file refs, episode stats)
    data/chunk-000/file-000.parquet                  one row per frame (state, action, timestamp, indices)
    videos/<camera key>/chunk-000/file-000.mp4       every episode's frames, back to back

Timestamps are episode-relative (``frame_index / fps``); an episode's frames sit in the mp4 at
``from_timestamp + timestamp``. This writer keeps one data file and one video file per camera
(LeRobot's 100 MB / 200 MB rollover sizes are recorded in info.json but not applied; LeRobot
reads any size).

Statistics follow ``compute_stats.py``: per episode (vectors: every frame; images: per channel
in [0, 1] over an evenly spaced sample of frames, shape (3, 1, 1)), quantiles from a
5000-bin histogram, then count-weighted aggregation over episodes. One deliberate difference:
LeRobot 0.4.4 squares uint8 pixels before promoting them (huggingface/lerobot#3682, fixed in
#3697), which makes its image ``std`` come out 0; here pixels are promoted first.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # LeRobot DEFAULT_CHUNK_SIZE: files per chunk folder
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_BINS = 5000
INDEX_FEATURES = {  # LeRobot DEFAULT_FEATURES, in its order
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
# Encoder settings LeRobot 0.4.4 uses (encode_video_frames / _get_codec_options): GOP 2, CRF 30, yuv420p,
# SVT-AV1 preset 12. "h264" is libx264 in PyAV's wheels.
CODECS = {"libsvtav1": {"g": "2", "crf": "30", "preset": "12"}, "h264": {"g": "2", "crf": "30"}}


class LeRobotFormatError(ValueError):
    """A folder is not a LeRobotDataset v3.0 this module can read, or a write was refused."""


def require_libraries() -> None:
    """pyarrow and PyAV (requirements/dev.txt) or one clear error instead of an ImportError."""
    missing = []
    for module, package in (("pyarrow", "pyarrow"), ("av", "av")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise LeRobotFormatError(f"LeRobot datasets need {' and '.join(missing)}: pip install -r requirements/dev.txt")


# ------------------------------------------------------------------------------------------ statistics
def num_stat_samples(n: int, low: int = 100, high: int = 10_000, power: float = 0.75) -> int:
    """How many frames of an ``n``-frame episode image stats look at (LeRobot ``estimate_num_samples``)."""
    low = min(low, n)
    return max(low, min(int(n ** power), high))


def stat_sample_indices(n: int) -> np.ndarray:
    """Evenly spaced frame indices used for image stats (LeRobot ``sample_indices``)."""
    return np.round(np.linspace(0, n - 1, num_stat_samples(n))).astype(int)


def stat_downsample(rgb: np.ndarray, target: int = 150, threshold: int = 300) -> np.ndarray:
    """(H, W, 3) -> every k-th pixel when the image is >= 300 px (LeRobot ``auto_downsample_height_width``)."""
    h, w = rgb.shape[:2]
    if max(h, w) < threshold:
        return rgb
    k = int(w / target) if w > h else int(h / target)
    return rgb[::k, ::k]


def _hist_quantile(values: np.ndarray, lo: float, hi: float, q: float) -> float:
    """Quantile of ``values`` from a 5000-bin histogram over [min, max], interpolated in its bin."""
    edges = np.linspace(lo - 1e-10, hi + 1e-10, QUANTILE_BINS + 1)
    cumsum = np.cumsum(np.histogram(values, bins=edges)[0])
    target = q * len(values)
    i = int(np.searchsorted(cumsum, target))
    if i == 0:
        return float(edges[0])
    if i >= len(cumsum):
        return float(edges[-1])
    before, inside = cumsum[i - 1], cumsum[i] - cumsum[i - 1]
    if inside == 0:
        return float(edges[i])
    return float(edges[i] + (target - before) / inside * (edges[i + 1] - edges[i]))


def vector_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """(N, D) or (N,) values -> {min, max, mean, std, count, q01..q99}, each (D,) or (1,); count (1,)."""
    raw = np.asarray(x)
    x2 = raw.reshape(len(raw), -1).astype(np.float64)
    ints = np.issubdtype(raw.dtype, np.integer)  # LeRobot keeps integer min/max as integers
    out = {"min": raw.reshape(len(raw), -1).min(0) if ints else x2.min(0),
           "max": raw.reshape(len(raw), -1).max(0) if ints else x2.max(0),
           "mean": x2.mean(0), "std": x2.std(0), "count": np.array([len(raw)], np.int64)}
    for q in QUANTILES:
        key = f"q{int(q * 100):02d}"
        if len(x2) < 2:  # LeRobot: too few samples for a histogram, quantiles = mean
            out[key] = out["mean"].copy()
        else:
            out[key] = np.array([_hist_quantile(x2[:, d], x2[:, d].min(), x2[:, d].max(), q)
                                 for d in range(x2.shape[1])])
    return out


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """(n, H, W, 3) uint8 sampled frames -> per-channel stats in [0, 1], shape (3, 1, 1); count = n."""
    pixels = frames.reshape(-1, 3).astype(np.float64)
    stats = vector_stats(pixels)
    out = {k: (v / 255.0).reshape(3, 1, 1) for k, v in stats.items() if k != "count"}
    out["count"] = np.array([len(frames)], np.int64)
    return out


def aggregate_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Episode stats of one feature -> dataset stats (LeRobot ``aggregate_feature_stats``): min/max
    over episodes, count-weighted mean, pooled variance, count-weighted mean of each quantile."""
    counts = np.stack([s["count"] for s in per_episode])  # (E, 1)
    means = np.stack([s["mean"] for s in per_episode])  # (E, *stat shape)
    w = counts.astype(np.float64).reshape(counts.shape + (1,) * (means.ndim - counts.ndim))
    total = w.sum(0)  # broadcasts against one stat
    mean = (means * w).sum(0) / total
    var = ((np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2) * w).sum(0) / total
    out = {"min": np.min([s["min"] for s in per_episode], 0), "max": np.max([s["max"] for s in per_episode], 0),
           "mean": mean, "std": np.sqrt(var), "count": counts.sum(0)}
    for q in QUANTILES:
        key = f"q{int(q * 100):02d}"
        out[key] = (np.stack([s[key] for s in per_episode]) * w).sum(0) / total
    return out


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


# ------------------------------------------------------------------------------------------ writing
@dataclass
class EpisodeRecord:
    index: int
    length: int
    from_index: int  # global index of the first frame
    stats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class VideoWriter:
    """One camera's frames -> one mp4, frame i at pts i / fps (as LeRobot concatenates episodes)."""

    def __init__(self, path: Path, fps: int, width: int, height: int, vcodec: str = "libsvtav1"):
        import av

        if vcodec not in CODECS:
            raise LeRobotFormatError(f"video codec {vcodec!r} not supported (choose from {sorted(CODECS)})")
        if width % 2 or height % 2:
            raise LeRobotFormatError(f"yuv420p video needs even width/height, camera is {width}x{height}")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config to stderr otherwise; 1 = errors
        self.fps = fps
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(vcodec, rate=fps, options=dict(CODECS[vcodec]))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.time_base = Fraction(1, fps)
        self.frames = 0
        self._av = av

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = self.frames, Fraction(1, self.fps)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class LeRobotV3Writer:
    """Write one LeRobotDataset v3.0 folder: ``add_episode`` per episode, then ``finish``.

    Frames stream straight into the encoder; only the frames sampled for image stats are kept.
    """

    def __init__(self, root: str | Path, fps: int, camera_key: str, image_hw: tuple[int, int],
                 names: list[str], task: str, robot_type: str | None = None, vcodec: str = "libsvtav1"):
        self.root = Path(root)
        if int(fps) != fps or fps <= 0:
            raise LeRobotFormatError(f"LeRobot stores an integer fps, got {fps}")
        self.fps, self.names, self.task, self.robot_type = int(fps), list(names), task, robot_type
        self.video_key = camera_key if camera_key.startswith("observation.images.") \
            else f"observation.images.{camera_key}"
        self.height, self.width = int(image_hw[0]), int(image_hw[1])
        self.vcodec = vcodec
        self.video = VideoWriter(self.root / VIDEO_PATH.format(video_key=self.video_key, chunk_index=0, file_index=0),
                                 self.fps, self.width, self.height, vcodec)
        self.episodes: list[EpisodeRecord] = []
        self._states: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self.total = 0

    def add_episode(self, frames: Iterable[np.ndarray], states: np.ndarray, actions: np.ndarray) -> None:
        """One episode: ``len(states)`` RGB (H, W, 3) uint8 frames, (n, D) float32 states and actions."""
        n = len(states)
        if n < 1 or len(actions) != n:
            raise LeRobotFormatError(f"episode with {n} states and {len(actions)} actions")
        pick = set(stat_sample_indices(n).tolist())
        sampled, count = [], 0
        for i, rgb in enumerate(frames):
            if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
                raise LeRobotFormatError(f"frame {i} of episode {len(self.episodes)} is {rgb.shape} {rgb.dtype}, "
                                         f"expected ({self.height}, {self.width}, 3) uint8")
            self.video.write(rgb)
            if i in pick:
                sampled.append(stat_downsample(rgb))
            count += 1
        if count != n:
            raise LeRobotFormatError(f"episode {len(self.episodes)}: {count} frames for {n} samples")
        ep = EpisodeRecord(len(self.episodes), n, self.total)
        frame_index = np.arange(n)
        ep.stats = {
            self.video_key: image_stats(np.stack(sampled)),
            "observation.state": vector_stats(states), "action": vector_stats(actions),
            "timestamp": vector_stats((frame_index / self.fps).astype(np.float32)),
            "frame_index": vector_stats(frame_index), "episode_index": vector_stats(np.full(n, ep.index)),
            "index": vector_stats(np.arange(self.total, self.total + n)), "task_index": vector_stats(np.zeros(n, np.int64)),
        }
        self.episodes.append(ep)
        self._states.append(np.asarray(states, np.float32))
        self._actions.append(np.asarray(actions, np.float32))
        self.total += n

    def features(self) -> dict:
        vector = {"dtype": "float32", "shape": [len(self.names)], "names": list(self.names)}
        return {
            self.video_key: {"dtype": "video", "shape": [self.height, self.width, 3],
                             "names": ["height", "width", "channels"], "info": video_info(self.video_path)},
            "observation.state": dict(vector), "action": dict(vector), **json.loads(json.dumps(INDEX_FEATURES)),
        }

    @property
    def video_path(self) -> Path:
        return self.root / VIDEO_PATH.format(video_key=self.video_key, chunk_index=0, file_index=0)

    def finish(self) -> dict:
        """Close the video, write parquet files and metadata; returns info.json's content."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.video.close()
        if not self.episodes:
            raise LeRobotFormatError("no episodes to write")
        states, actions = np.concatenate(self._states), np.concatenate(self._actions)
        frame_index = np.concatenate([np.arange(e.length) for e in self.episodes])
        episode_index = np.concatenate([np.full(e.length, e.index) for e in self.episodes])
        d = states.shape[1]
        vec = pa.list_(pa.float32(), d)  # HF datasets Sequence(length=d, float32) = fixed-size list
        table = pa.table({
            "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1), pa.float32()), d),
            "action": pa.FixedSizeListArray.from_arrays(pa.array(actions.reshape(-1), pa.float32()), d),
            "timestamp": pa.array((frame_index / self.fps).astype(np.float32)),
            "frame_index": pa.array(frame_index.astype(np.int64)),
            "episode_index": pa.array(episode_index.astype(np.int64)),
            "index": pa.array(np.arange(self.total, dtype=np.int64)),
            "task_index": pa.array(np.zeros(self.total, np.int64)),
        })
        assert table.schema.field("action").type == vec
        # What HF datasets stores beside the columns (LeRobot passes the features explicitly anyway).
        value = {"float32": {"dtype": "float32", "_type": "Value"}, "int64": {"dtype": "int64", "_type": "Value"}}
        hf = {"observation.state": {"feature": value["float32"], "length": d, "_type": "List"},
              "action": {"feature": value["float32"], "length": d, "_type": "List"},
              **{k: value[spec["dtype"]] for k, spec in INDEX_FEATURES.items()}}
        table = table.replace_schema_metadata({b"huggingface": json.dumps({"info": {"features": hf}}).encode()})
        path = self.root / DATA_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy")
        self._write_tasks()
        self._write_episodes()
        stats = {key: aggregate_stats([e.stats[key] for e in self.episodes]) for key in self.episodes[0].stats}
        (self.root / STATS_PATH).write_text(json.dumps(_jsonable(stats), indent=4) + "\n")
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
            "total_episodes": len(self.episodes), "total_frames": self.total, "total_tasks": 1,
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
            "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB, "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"}, "data_path": DATA_PATH, "video_path": VIDEO_PATH,
            "features": self.features(),
        }
        (self.root / INFO_PATH).write_text(json.dumps(info, indent=4, ensure_ascii=False) + "\n")
        return info

    def _write_tasks(self) -> None:
        """A pandas-readable frame (index = task text, column task_index), as ``DataFrame.to_parquet`` writes it."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        pandas_meta = {"index_columns": ["__index_level_0__"],
                       "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                           "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                       "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                    "numpy_type": "int64", "metadata": None},
                                   {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                                    "numpy_type": "object", "metadata": None}],
                       "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
                       "pandas_version": "2.2.3"}
        table = pa.table({"task_index": pa.array([0], pa.int64()), "__index_level_0__": pa.array([self.task])})
        table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
        (self.root / "meta").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.root / TASKS_PATH)

    def _write_episodes(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows: dict[str, list] = {}
        key = self.video_key
        for e in self.episodes:
            row = {"episode_index": e.index, "tasks": [self.task], "length": e.length,
                   "data/chunk_index": 0, "data/file_index": 0,
                   "dataset_from_index": e.from_index, "dataset_to_index": e.from_index + e.length,
                   f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                   f"videos/{key}/from_timestamp": e.from_index / self.fps,
                   f"videos/{key}/to_timestamp": (e.from_index + e.length) / self.fps}
            for feat, stats in e.stats.items():
                for name, value in stats.items():
                    row[f"stats/{feat}/{name}"] = np.asarray(value).tolist()
            row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
            for k, v in row.items():
                rows.setdefault(k, []).append(v)
        path = self.root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pydict(rows), path, compression="snappy")


def video_info(path: Path) -> dict:
    """info.json's ``features[<video>]["info"]``, the fields LeRobot's ``get_video_info`` reads with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {"video.height": stream.height, "video.width": stream.width,
                "video.codec": stream.codec_context.codec.canonical_name, "video.pix_fmt": stream.pix_fmt,
                "video.is_depth_map": False, "video.fps": int(stream.base_rate), "video.channels": 3,
                "has_audio": bool(container.streams.audio)}
    return info


# ------------------------------------------------------------------------------------------ checking
def check_dataset(root: str | Path, decode: bool = False) -> list[str]:
    """Problems with a LeRobotDataset v3.0 folder written here (empty list: fine). Needs no LeRobot.

    Checks info.json fields, the parquet schemas and row counts, episode ranges against the data,
    and that each video holds ``total_frames`` frames at the dataset fps (``decode``: decoding
    every frame rather than counting packets).
    """
    import av
    import pyarrow.parquet as pq

    root, problems = Path(root), []
    try:
        info = json.loads((root / INFO_PATH).read_text())
    except (OSError, ValueError) as err:
        return [f"{INFO_PATH}: {err}"]
    for key in ("codebase_version", "fps", "features", "total_frames", "total_episodes", "total_tasks",
                "chunks_size", "data_path", "video_path", "splits"):
        if key not in info:
            problems.append(f"info.json lacks {key}")
    if problems:
        return problems
    if info["codebase_version"] != CODEBASE_VERSION:
        problems.append(f"codebase_version {info['codebase_version']!r} != {CODEBASE_VERSION!r}")
    if not isinstance(info["fps"], int):
        problems.append(f"fps {info['fps']!r} is not an integer")
    feats = info["features"]
    for key, spec in INDEX_FEATURES.items():
        if feats.get(key, {}).get("dtype") != spec["dtype"]:
            problems.append(f"feature {key}: dtype {feats.get(key, {}).get('dtype')} != {spec['dtype']}")
    expected_arrow = {"float32": "float", "int64": "int64"}
    data_files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    rows = 0
    for path in data_files:
        schema = pq.read_schema(path)
        rows += pq.read_metadata(path).num_rows
        for key, spec in feats.items():
            if spec["dtype"] in ("video", "image"):
                continue
            if key not in schema.names:
                problems.append(f"{path.name}: column {key} missing")
                continue
            t = schema.field(key).type
            want = expected_arrow.get(spec["dtype"], spec["dtype"])
            if spec["shape"] == [1]:
                ok = str(t) == want
            else:
                ok = getattr(t, "list_size", None) == spec["shape"][0] and str(t.value_type) == want
            if not ok:
                problems.append(f"{path.name}: column {key} is {t}, feature says {spec['dtype']} {spec['shape']}")
    if not data_files:
        problems.append("no data/chunk-*/file-*.parquet")
    if rows != info["total_frames"]:
        problems.append(f"data holds {rows} rows, info.json total_frames {info['total_frames']}")
    ep_files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    episodes = [r for f in ep_files for r in pq.read_table(f).to_pylist()]
    if len(episodes) != info["total_episodes"]:
        problems.append(f"{len(episodes)} episode rows, info.json total_episodes {info['total_episodes']}")
    end = 0
    for e in sorted(episodes, key=lambda r: r["episode_index"]):
        if e["dataset_from_index"] != end or e["dataset_to_index"] - e["dataset_from_index"] != e["length"]:
            problems.append(f"episode {e['episode_index']}: range {e['dataset_from_index']}:"
                            f"{e['dataset_to_index']} (length {e['length']}) does not follow {end}")
        end = e["dataset_to_index"]
    if not (root / TASKS_PATH).is_file():
        problems.append(f"{TASKS_PATH} missing")
    if not (root / STATS_PATH).is_file():
        problems.append(f"{STATS_PATH} missing")
    for key, spec in feats.items():
        if spec["dtype"] != "video":
            continue
        for path in sorted((root / "videos" / key).glob("chunk-*/file-*.mp4")):
            try:
                with av.open(str(path)) as container:
                    stream = container.streams.video[0]
                    if (stream.height, stream.width) != tuple(spec["shape"][:2]):
                        problems.append(f"{path}: {stream.height}x{stream.width} != feature shape {spec['shape']}")
                    if decode:
                        n = sum(1 for _ in container.decode(stream))
                    else:
                        n = sum(1 for p in container.demux(stream) if p.size)
            except (av.error.FFmpegError, IndexError) as err:
                problems.append(f"{path}: unreadable video ({err})")
                continue
            if n != info["total_frames"]:
                problems.append(f"{path}: {n} frames, info.json total_frames {info['total_frames']}")
    return problems


# ------------------------------------------------------------------------------------------ reading
def read_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """(pts in seconds, (H, W, 3) uint8 RGB) of every frame of a video."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield float(frame.pts * frame.time_base), frame.to_ndarray(format="rgb24")


def load_lerobot_v3(root: str | Path, image_size: tuple[int, int] | None = None, fit: str = "resize",
                    camera_key: str | None = None):
    """A LeRobotDataset v3.0 folder -> ``Demonstrations`` (segments = episodes).

    Reads ``observation.state`` / ``action`` from the data parquet files and the camera's frames
    from its mp4 files (frame at ``from_timestamp + timestamp`` of its episode).
    """
    require_libraries()
    import pyarrow.parquet as pq

    from edge_inference.models.act.dataset import Demonstrations, _resize

    root = Path(root)
    info = json.loads((root / INFO_PATH).read_text())
    if not str(info.get("codebase_version", "")).startswith("v3."):
        raise LeRobotFormatError(f"{root}: codebase_version {info.get('codebase_version')!r}, expected v3.x")
    fps = int(info["fps"])
    videos = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    if camera_key is not None:
        videos = [k for k in videos if k in (camera_key, f"observation.images.{camera_key}")]
    if len(videos) != 1:
        raise LeRobotFormatError(f"{root}: need exactly one camera video, found {videos} (pass camera_key)")
    key = videos[0]
    for name in ("observation.state", "action"):
        if name not in info["features"]:
            raise LeRobotFormatError(f"{root}: feature {name} missing")
    data = [pq.read_table(p) for p in sorted((root / "data").glob("chunk-*/file-*.parquet"))]
    def column(table, name: str) -> np.ndarray:  # fixed-size lists -> (N, D)
        col = table.column(name).combine_chunks()
        return col.flatten().to_numpy().reshape(len(col), -1) if hasattr(col, "flatten") else col.to_numpy()

    cols = {c: np.concatenate([column(t, c) for t in data])
            for c in ("observation.state", "action", "timestamp", "episode_index", "index")}
    order = np.argsort(cols["index"], kind="stable")
    cols = {c: v[order] for c, v in cols.items()}
    episodes = {r["episode_index"]: r for p in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
                for r in pq.read_table(p).to_pylist()}
    # Wanted (file, frame number) of each row; decode each file once, in order.
    wanted: dict[Path, dict[int, list[int]]] = {}
    for row, (ep, ts) in enumerate(zip(cols["episode_index"], cols["timestamp"])):
        e = episodes[int(ep)]
        path = root / info["video_path"].format(video_key=key, chunk_index=e[f"videos/{key}/chunk_index"],
                                                file_index=e[f"videos/{key}/file_index"])
        frame = int(round((e[f"videos/{key}/from_timestamp"] + float(ts)) * fps))
        wanted.setdefault(path, {}).setdefault(frame, []).append(row)
    images: list[np.ndarray | None] = [None] * len(order)
    for path, frames in wanted.items():
        for pts, rgb in read_frames(path):
            rows = frames.get(int(round(pts * fps)))
            if rows:
                small = _resize(rgb, image_size, fit)
                for r in rows:
                    images[r] = small
    missing = sum(im is None for im in images)
    if missing:
        raise LeRobotFormatError(f"{root}: {missing} rows have no video frame at their timestamp")
    names = info["features"]["action"].get("names") or ["steering", "throttle"]
    if isinstance(names, dict):  # some LeRobot datasets: {"motors": [...]}
        names = next(iter(names.values()))
    return Demonstrations(np.stack(images), cols["observation.state"].astype(np.float32),
                          cols["action"].astype(np.float32), cols["episode_index"].astype(np.int64), float(fps),
                          [str(n) for n in names], str(root))


# ------------------------------------------------------------------------------------------ atomic output
def staging_dir(target: Path) -> Path:
    """A fresh temp folder beside ``target`` (same filesystem, so the final rename is atomic)."""
    target = Path(target)
    if target.exists():
        raise LeRobotFormatError(f"{target} already exists; refusing to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def commit_dir(tmp: Path, target: Path) -> None:
    """Rename the checked temp folder to ``target`` (refused if ``target`` appeared meanwhile)."""
    if Path(target).exists():
        raise LeRobotFormatError(f"{target} appeared while exporting; the export stays in {tmp}")
    os.rename(tmp, target)


def folder_size(root: Path) -> int:
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def nominal_fps(fps: float) -> int:
    """Integer rate LeRobot stores for a measured rate (e.g. 19.96 -> 20)."""
    return max(1, int(math.floor(fps + 0.5)))
