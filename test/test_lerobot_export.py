"""export-dataset: rosbag2 -> LeRobotDataset v3.0, checked without LeRobot (structure, dtypes, values, video).

The load by LeRobot itself and an ACT step with its ACTPolicy run in a separate venv:
test/lerobot_compat/check_lerobot_load.py (see docs/LEROBOT.md).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

from edge_inference.cli import main  # noqa: E402
from edge_inference.core import bag_io  # noqa: E402
from edge_inference.datasets import lerobot_v3 as lr  # noqa: E402
from edge_inference.datasets.lerobot_export import export_bags, resample  # noqa: E402
from edge_inference.models.act.dataset import align_samples, load_any, load_bag  # noqa: E402

H, W = 48, 64
T0 = 1_700_000_000_000_000_000


def frame(i: int) -> np.ndarray:
    """A frame that differs per index and is smooth enough to survive CRF 30."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([(x * 4 + i * 7) % 256, (y * 5) % 256, np.full_like(x, (i * 23) % 256)], axis=-1)
    return rgb.astype(np.uint8)


def make_bag(path: Path, stamps_s: list[float], shape=(H, W), with_state: bool = False) -> Path:
    """Camera frames at ``stamps_s`` (s after T0), each answered by a command 5 ms later."""
    cmd_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleCommand")
    state_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleState")
    with bag_io.BagWriter(path) as writer:
        for i, s in enumerate(stamps_s):
            t = T0 + int(round(s * 1e9))
            rgb = frame(i) if shape == (H, W) else np.zeros((*shape, 3), np.uint8)
            writer.write("/camera/image_raw", bag_io.rgb_to_image(rgb, t), t)
            writer.write("/vehicle/command", cmd_cls(header=bag_io.make_header(t + 5_000_000),
                                                     steering=np.sin(i / 3.0), throttle=0.2 + 0.01 * i, source=2),
                         t + 5_000_000)
            if with_state:
                writer.write("/vehicle/state", state_cls(
                    header=bag_io.make_header(t), steering_us=1500, throttle_us=1500, steering=-0.01 * i,
                    throttle=0.3, mode=1, link=2, armed=True, failsafe_flags=0, rc_steering_us=0,
                    rc_throttle_us=0, rc_mode_us=0, loop_time_us=0.0, rtt_ms=0.0), t)
    return path


def drive_stamps() -> list[float]:
    """20 Hz, 30 frames, a 2 s pause, 25 frames: two episodes."""
    first = [i * 0.05 for i in range(30)]
    return first + [first[-1] + 2.0 + i * 0.05 for i in range(25)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    bag = make_bag(root / "drive", drive_stamps())
    out = root / "ds"
    summary = export_bags([bag], out, "drive the track", "me/test", progress=False)
    return bag, out, summary


def test_layout_info_and_summary(exported):
    _, out, summary = exported
    assert (summary.frames, summary.episodes, summary.fps, summary.dropped, summary.duplicated) == (55, 2, 20, 0, 0)
    for rel in ("meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
                "data/chunk-000/file-000.parquet", "videos/observation.images.front/chunk-000/file-000.mp4"):
        assert (out / rel).is_file(), rel
    assert not list(out.parent.glob(".ds.partial-*"))  # the temp folder was renamed
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and isinstance(info["fps"], int)
    assert (info["total_frames"], info["total_episodes"], info["total_tasks"]) == (55, 2, 1)
    assert info["splits"] == {"train": "0:2"} and info["chunks_size"] == 1000
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    f = info["features"]
    assert list(f) == ["observation.images.front", "observation.state", "action", "timestamp", "frame_index",
                       "episode_index", "index", "task_index"]
    video = f["observation.images.front"]
    assert (video["dtype"], video["shape"], video["names"]) == ("video", [H, W, 3], ["height", "width", "channels"])
    assert video["info"]["video.codec"] == "av1" and video["info"]["video.pix_fmt"] == "yuv420p"
    assert (video["info"]["video.fps"], video["info"]["has_audio"]) == (20, False)
    for key in ("observation.state", "action"):
        assert f[key] == {"dtype": "float32", "shape": [2], "names": ["steering", "throttle"]}
    assert f["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    assert lr.check_dataset(out, decode=True) == []


def test_parquet_dtypes_and_rows(exported):
    _, out, _ = exported
    table = pq.read_table(out / "data/chunk-000/file-000.parquet")
    types = {name: str(table.schema.field(name).type) for name in table.schema.names}
    assert types == {"observation.state": "fixed_size_list<element: float>[2]", "action": "fixed_size_list<element: float>[2]",
                     "timestamp": "float", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                     "task_index": "int64"}
    cols = table.to_pydict()
    assert cols["index"] == list(range(55)) and cols["episode_index"] == [0] * 30 + [1] * 25
    assert cols["frame_index"] == list(range(30)) + list(range(25))
    np.testing.assert_allclose(cols["timestamp"], np.r_[np.arange(30), np.arange(25)] / 20.0, atol=1e-6)
    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert tasks.column("task_index").to_pylist() == [0]
    assert tasks.column("__index_level_0__").to_pylist() == ["drive the track"]
    pandas_meta = json.loads(tasks.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["__index_level_0__"]  # pandas restores the task text as the index
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(e["episode_index"], e["length"], e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == \
        [(0, 30, 0, 30), (1, 25, 30, 55)]
    assert episodes[1]["videos/observation.images.front/from_timestamp"] == pytest.approx(1.5)
    assert episodes[1]["videos/observation.images.front/to_timestamp"] == pytest.approx(2.75)
    assert episodes[0]["tasks"] == ["drive the track"] and episodes[0]["data/file_index"] == 0
    assert np.asarray(episodes[0]["stats/observation.images.front/mean"]).shape == (3, 1, 1)
    assert episodes[0]["stats/observation.images.front/count"] == [30]  # < 100 frames: every frame sampled


def test_values_are_the_train_act_alignment_and_stats_match(exported):
    bag, out, _ = exported
    ref = load_bag(bag, None)
    cols = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pydict()
    state, action = np.asarray(cols["observation.state"], np.float32), np.asarray(cols["action"], np.float32)
    assert np.array_equal(state, ref.states) and np.array_equal(action, ref.actions)
    assert np.all(state[30] == 0) and np.array_equal(state[31], action[30])  # neutral after the pause
    stats = json.loads((out / "meta/stats.json").read_text())
    assert set(stats) == {"observation.images.front", "observation.state", "action", "timestamp", "frame_index",
                          "episode_index", "index", "task_index"}
    a = stats["action"]
    assert set(a) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    np.testing.assert_allclose(a["mean"], action.astype(np.float64).mean(0), atol=1e-6)
    np.testing.assert_allclose(a["std"], action.astype(np.float64).std(0), atol=1e-6)
    np.testing.assert_allclose(a["min"], action.min(0), atol=1e-6)
    assert a["count"] == [55]
    width = (action.max(0) - action.min(0)) / 5000 * 2  # histogram quantiles: within a bin or two of exact
    for q in (1, 10, 50, 90, 99):  # dataset quantile = count-weighted mean of the episodes' quantiles (LeRobot)
        per_ep = [np.quantile(action[s], q / 100, method="inverted_cdf", axis=0) for s in (slice(0, 30), slice(30, 55))]
        expect = (30 * per_ep[0] + 25 * per_ep[1]) / 55
        assert np.all(np.abs(np.asarray(a[f"q{q:02d}"]) - expect) <= np.maximum(width, 0.06)), q
    img = stats["observation.images.front"]
    assert np.asarray(img["mean"]).shape == (3, 1, 1) and img["count"] == [55]
    pixels = np.stack([frame(i) for i in range(55)]).reshape(-1, 3) / 255.0
    np.testing.assert_allclose(np.asarray(img["mean"]).ravel(), pixels.mean(0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(img["std"]).ravel(), pixels.std(0), atol=1e-3)  # pooled over 2 episodes
    assert np.asarray(img["std"]).min() > 0.05  # not LeRobot 0.4.4's uint8-overflow 0 (lerobot#3682)
    assert stats["index"]["max"] == [54] and stats["timestamp"]["max"] == pytest.approx([1.45])


def test_video_frames_decode_close_to_the_source(exported):
    _, out, _ = exported
    frames = list(lr.read_frames(out / "videos/observation.images.front/chunk-000/file-000.mp4"))
    assert len(frames) == 55
    assert [round(pts * 20) for pts, _ in frames] == list(range(55))  # frame k at k / fps
    errors = [np.abs(rgb.astype(int) - frame(i).astype(int)).mean() for i, (_, rgb) in enumerate(frames)]
    assert max(errors) < 6.0, errors  # mean abs error, 0..255 (AV1, CRF 30)


def test_train_act_reads_the_exported_dataset(exported, tmp_path, capsys):
    bag, out, _ = exported
    data = load_any([out], None)
    ref = load_bag(bag, None)
    assert (len(data), data.fps, data.action_names) == (55, 20.0, ["steering", "throttle"])
    assert np.array_equal(data.states, ref.states) and np.array_equal(data.actions, ref.actions)
    assert np.array_equal(data.segments, ref.segments)
    assert np.abs(data.images.astype(int) - ref.images.astype(int)).mean() < 6.0
    rc = main(["train-act", "--data", str(out), "--small", "--max-steps", "1", "--device", "cpu", "--threads", "1",
               "--out", str(tmp_path / "act")])
    assert rc == 0 and "55 frames" in capsys.readouterr().out


def test_resampling_reports_dropped_and_duplicated(tmp_path):
    # 10 Hz over 1.9 s: at 20 fps 39 ticks (19 frames doubled); at 5 fps 10 ticks (every other frame dropped).
    stamps = [i * 0.1 for i in range(20)]
    bag = make_bag(tmp_path / "drive", stamps)
    up = export_bags([bag], tmp_path / "up", "t", "me/up", fps=20, progress=False)
    assert (up.frames, up.episodes, up.fps, up.dropped) == (39, 1, 20, 0) and up.duplicated == 19
    down = export_bags([bag], tmp_path / "down", "t", "me/down", fps=5, progress=False)
    assert (down.frames, down.dropped, down.duplicated) == (10, 10, 0)
    assert lr.check_dataset(tmp_path / "up") == [] and lr.check_dataset(tmp_path / "down") == []
    data = load_any([tmp_path / "down"], None)
    ref = load_bag(bag, None)
    assert np.array_equal(data.actions, ref.actions[::2])  # a kept frame keeps its own state and action
    assert np.array_equal(resample(np.array([0, 40, 100, 160], np.int64) * 1_000_000, 20.0), [0, 1, 2, 3])


def test_bags_are_separate_sessions_and_state_topic_is_used(tmp_path):
    a = make_bag(tmp_path / "a", [i * 0.05 for i in range(12)], with_state=True)
    b = make_bag(tmp_path / "b", [i * 0.05 for i in range(10)])  # same clock: only the bag boundary splits
    s = export_bags([a, b], tmp_path / "ds", "t", "me/ab", progress=False)
    assert (s.frames, s.episodes) == (22, 2) and s.state_source == ["vehicle/state", "previous command"]
    cols = pq.read_table(tmp_path / "ds/data/chunk-000/file-000.parquet").to_pydict()
    np.testing.assert_allclose(np.asarray(cols["observation.state"])[:12, 0], -0.01 * np.arange(12), atol=1e-6)


def test_alignment_is_one_shared_function():
    frames = np.array([0, 50, 100, 2000, 2050]) * 1_000_000
    cmds = frames + 3_000_000
    a = align_samples(frames, cmds, [[i, 0.5] for i in range(5)])
    assert a.segments.tolist() == [0, 0, 0, 1, 1] and a.actions[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert a.states[:, 0].tolist() == [0, 0, 1, 0, 3] and a.state_source == "previous command"


def test_cli_refuses_existing_target_and_leaves_no_partial_output(tmp_path, capsys):
    bag = make_bag(tmp_path / "drive", [i * 0.05 for i in range(8)])
    (tmp_path / "taken").mkdir()
    assert main(["export-dataset", str(bag), "--out", str(tmp_path / "taken"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    odd = make_bag(tmp_path / "odd", [i * 0.05 for i in range(8)], shape=(15, 20))
    assert main(["export-dataset", str(odd), "--out", str(tmp_path / "ds"), "--quiet"]) == 2
    assert "even width/height" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds.partial-*"))
    rc = main(["export-dataset", str(bag), "--out", str(tmp_path / "h264"), "--vcodec", "h264", "--quiet",
               "--task", "lap", "--repo-id", "me/lap"])
    text = capsys.readouterr().out
    assert rc == 0 and "8 frames in 1 episodes" in text and "--dataset.repo_id=me/lap" in text
    info = json.loads((tmp_path / "h264/meta/info.json").read_text())
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == "h264"
    assert lr.check_dataset(tmp_path / "h264", decode=True) == []
