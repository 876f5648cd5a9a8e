"""Offline evaluation on real rosbag2 files: metric values, determinism, reports, bad input.

The bags are written with rosbags (MCAP and sqlite3) and hold camera images,
teleop commands, IMU and behavior labels. The test policy and classifier below
have the runners' interface and known, exactly predictable errors, so every
metric is checked against a direct computation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_inference.cli import main as cli_main
from edge_inference.core import bag_io
from edge_inference.core.bag_io import BagWriter
from edge_inference.core.chunk_scheduler import SchedulerConfig
from edge_inference.core.imu_window import SmootherConfig, WindowConfig
from edge_inference.evaluation import metrics as M
from edge_inference.evaluation.replay import ReplayConfig, evaluate_bag
from edge_inference.evaluation.report import comparison_markdown, write_report
from edge_inference.evaluation.window_labels import window_label

T0 = 1_700_000_000_000_000_000
FRAME_NS = 50_000_000  # 20 Hz camera and teleop
N = 60
HORIZON = 8
STEPS = 4  # queue mode: actions executed per chunk
IMU_NS = 20_000_000  # 50 Hz
SEGMENT_S = 4  # behavior label segments


def steering(i):
    return 0.8 * np.sin(np.asarray(i) / 5.0)


def throttle(i):
    return 0.3 + 0.1 * np.cos(np.asarray(i) / 7.0)


class IndexPolicy:
    """Reads the frame index from pixel (0, 0, 0); action k = true steering of frame i+k plus 0.02*k.

    Throttle repeats the state input, so the state plumbing is checked too.
    """

    action_names = ["steering", "throttle"]
    dt = FRAME_NS / 1e9
    chunk_size = HORIZON

    def __init__(self, error_per_step: float = 0.02):
        self.error_per_step = error_per_step

    def predict(self, image_rgb, state):
        i = int(image_rgb[0, 0, 0])
        k = np.arange(HORIZON)
        steer = steering(i + k) + self.error_per_step * k
        return np.stack([steer, np.full(HORIZON, state[1])], axis=1)


class GyroClassifier:
    """Class = round(gyro z) of the newest row; it mistakes class 2 for class 1."""

    class_names = ["still", "slow", "fast"]

    def predict(self, window):
        true = int(round(window[-1, 5]))
        pred = min(true, 1)
        probs = np.eye(3, dtype=np.float32)[pred]
        return probs, 10 + true  # an FSQ code per true class


def write_eval_bag(path: Path, storage: str = "mcap", bad_encoding_every: int = 0,
                   backwards_frame: int | None = None, with_vendor_topic: bool = False, shape=(8, 8),
                   teleop_as_state: bool = False, command_first: bool = False) -> None:
    """teleop_as_state: the teleop goes into VehicleState (MODE_MANUAL, every 10th frame MODE_AUTO) instead."""
    store = bag_io.make_typestore()
    if with_vendor_topic:
        store = bag_io.get_typestore(bag_io.Stores.ROS2_JAZZY)
        store.register({**bag_io.make_typestore().fielddefs,
                        **bag_io.get_types_from_msg("float64 value", "vendor_msgs/msg/Blob")})
    cmd_cls = store.types["edge_inference_msgs/msg/VehicleCommand"]
    imu_cls = store.types["sensor_msgs/msg/Imu"]
    vec = store.types["geometry_msgs/msg/Vector3"]
    quat = store.types["geometry_msgs/msg/Quaternion"]
    label_cls = store.types["edge_inference_msgs/msg/BehaviorState"]
    events = []  # (log_ns, topic, msg)
    for i in range(N):
        t = T0 + i * FRAME_NS
        rgb = np.zeros((*shape, 3), np.uint8)
        rgb[0, 0, 0] = i
        image = bag_io.rgb_to_image(rgb, t, store=store)
        if bad_encoding_every and i % bad_encoding_every == bad_encoding_every - 1:
            image.encoding = "yuv422"
        if backwards_frame is not None and i == backwards_frame:
            image.header = bag_io.make_header(t - 5 * FRAME_NS, store=store)
        events.append((t, "/camera/image_raw", image))
        if teleop_as_state:
            state_cls = store.types["edge_inference_msgs/msg/VehicleState"]
            events.append((t + 1, "/vehicle/state", state_cls(
                header=bag_io.make_header(t, store=store), steering_us=0, throttle_us=0,
                steering=float(steering(i)), throttle=float(throttle(i)),
                mode=state_cls.MODE_AUTO if i % 10 == 9 else state_cls.MODE_MANUAL, link=state_cls.LINK_UP,
                armed=True, failsafe_flags=0, rc_steering_us=0, rc_throttle_us=0, rc_mode_us=0,
                loop_time_us=0.0, rtt_ms=0.0)))
        else:
            events.append((t - 1 if command_first else t + 1, "/vehicle/command", cmd_cls(
                header=bag_io.make_header(t, store=store), steering=float(steering(i)),
                throttle=float(throttle(i)), source=cmd_cls.SOURCE_MANUAL)))
        if with_vendor_topic:  # a vendor message on a topic where the replay expects VehicleState
            events.append((t + 2, "/vehicle/state", store.types["vendor_msgs/msg/Blob"](value=1.0)))
    for j in range(int(3 * SEGMENT_S * 1e9 / IMU_NS)):
        t = T0 + j * IMU_NS
        cls = int((t - T0) // (SEGMENT_S * 1_000_000_000))
        events.append((t + 3, "/imu/data_raw", imu_cls(
            header=bag_io.make_header(t, store=store), orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=np.full(9, -1.0), angular_velocity=vec(x=0.0, y=0.0, z=float(cls)),
            angular_velocity_covariance=np.zeros(9), linear_acceleration=vec(x=0.0, y=0.0, z=9.81),
            linear_acceleration_covariance=np.zeros(9))))
        if (t - T0) % (SEGMENT_S * 1_000_000_000) == 0:
            events.append((t + 2, "/behavior/label", label_cls(
                header=bag_io.make_header(t, store=store), class_id=cls, label=GyroClassifier.class_names[cls],
                confidence=1.0, probabilities=np.zeros(0, np.float32), class_names=[], fsq_code=-1,
                latency_ms=0.0)))
    events.sort(key=lambda e: e[0])
    with BagWriter(path, storage=storage, store=store) as w:
        for log_ns, topic, msg in events:
            w.write(topic, msg, log_ns)


def eval_config(**kw) -> ReplayConfig:
    return ReplayConfig(
        scheduler=SchedulerConfig(mode="queue", n_action_steps=STEPS, max_action_age=1.0),
        window=WindowConfig(window_length=100, sample_rate_hz=50.0, stride=25),
        smoother=SmootherConfig(method="majority", vote_window=1), **kw)


def expected_policy_arrays():
    """What queue mode must execute: tick j uses the chunk of frame c = STEPS*floor(j/STEPS), action j-c."""
    j = np.arange(N)
    c = (j // STEPS) * STEPS
    pred_steer = steering(j) + 0.02 * (j - c)
    prev = np.where(c > 0, throttle(np.maximum(c - 1, 0)), 0.0)  # state = teleop before the frame; zeros first
    pred = np.stack([pred_steer, prev], axis=1)
    target = np.stack([steering(j), throttle(j)], axis=1)
    return pred, target, c


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_policy_metrics_match_direct_computation(tmp_path, storage):
    bag = tmp_path / "drive"
    write_eval_bag(bag, storage)
    metrics, result = evaluate_bag(str(bag), eval_config(), policy=IndexPolicy())
    pred, target, chunk_frames = expected_policy_arrays()
    np.testing.assert_allclose(np.stack(result.tick_pred), pred, atol=1e-6)
    policy = metrics["policy"]
    assert policy["scored_samples"] == N and policy["chunks"] == N // STEPS
    for d, name in enumerate(["steering", "throttle"]):
        err = pred[:, d] - target[:, d]
        got = policy["per_dimension"][name]
        assert got["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
        assert got["rmse"] == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-5)
        assert got["bias"] == pytest.approx(err.mean(), rel=1e-5, abs=1e-7)
        assert got["normalized_mae"] == pytest.approx(np.abs(err).mean() / target[:, d].std(), rel=1e-5)
        base = np.abs(target[:, d] - target[:, d].mean()).mean()
        assert policy["baseline_constant_mean"][name]["mae"] == pytest.approx(base, rel=1e-5)
    # Vision-free baseline under the same scheduling: the state (previous command) held per chunk.
    held = np.where((chunk_frames > 0)[:, None], target[np.maximum(chunk_frames - 1, 0)], 0.0)
    for d, name in enumerate(["steering", "throttle"]):
        assert policy["baseline_hold_state_per_chunk"][name]["mae"] == pytest.approx(
            np.abs(held[:, d] - target[:, d]).mean(), rel=1e-5)
    ratio = np.abs(pred[:, 0] - target[:, 0]).mean() / np.abs(target[:, 0] - target[:, 0].mean()).mean()
    assert policy["steering_mae_vs_constant_mean"] == pytest.approx(ratio, rel=1e-5)

    def sign(x):
        return np.where(np.abs(x) <= M.SIGN_DEADBAND, 0, np.sign(x))

    assert policy["steering_sign_agreement"] == pytest.approx((sign(pred[:, 0]) == sign(target[:, 0])).mean())
    # Along the horizon every chunk's action k is off by exactly 0.02*k where teleop exists.
    horizon = policy["horizon_mae"]
    np.testing.assert_allclose(horizon["steering"], 0.02 * np.arange(HORIZON), atol=1e-6)
    starts = np.unique(chunk_frames)
    assert horizon["count"] == [int((starts + k < N).sum()) for k in range(HORIZON)]


def test_command_stamped_with_the_frame_is_never_its_state_input(tmp_path):
    """Even when the teleop of time t is logged before the frame of time t, the policy sees t-1."""
    bag = tmp_path / "command_first"
    write_eval_bag(bag, "mcap", command_first=True)
    _, result = evaluate_bag(str(bag), eval_config(), policy=IndexPolicy())
    frames = (np.asarray(result.chunk_t0_ns) - T0) // FRAME_NS
    state_throttle = np.array([a[0, 1] for a in result.chunk_actions])  # IndexPolicy echoes the state
    expected = np.where(frames > 0, throttle(np.maximum(frames - 1, 0)), 0.0)
    assert len(frames) > 5
    np.testing.assert_allclose(state_throttle, expected, atol=1e-6)


def test_rover_drive_scored_against_manual_vehicle_state(tmp_path):
    bag = tmp_path / "rc_drive"
    write_eval_bag(bag, "sqlite3", teleop_as_state=True)
    metrics, result = evaluate_bag(str(bag), eval_config(teleop="state"), policy=IndexPolicy())
    pred, target, _ = expected_policy_arrays()  # state input = previous applied state, as with commands
    manual = np.arange(N) % 10 != 9
    np.testing.assert_allclose(np.stack(result.tick_pred), pred[manual], atol=1e-6)
    assert metrics["policy"]["scored_samples"] == int(manual.sum())
    err = np.abs(pred[manual, 0] - target[manual, 0]).mean()
    assert metrics["policy"]["per_dimension"]["steering"]["mae"] == pytest.approx(err, rel=1e-5)
    assert metrics["replay_activity"]["states_not_manual (not scored)"] == int((~manual).sum())


def test_latency_recorded_on_the_robot_is_summarized_per_stage(tmp_path):
    bag = tmp_path / "stats"
    write_eval_bag(bag, "mcap")
    stats_cls = bag_io.msg_class("edge_inference_msgs/msg/InferenceStats")
    bag2 = tmp_path / "with_stats"
    rng = np.random.default_rng(0)
    inference = rng.gamma(4.0, 5.0, 50)  # ms
    with BagWriter(bag2) as w:
        for m in bag_io.read_bag(bag):
            w.write(m.topic, m.msg, m.log_ns)
        for i, ms in enumerate(inference):
            t = T0 + i * FRAME_NS + 7
            w.write("/policy/stats", stats_cls(header=bag_io.make_header(t), model="act", backend="cpu",
                                               preprocess_ms=1.0, inference_ms=float(ms), postprocess_ms=0.5,
                                               end_to_end_ms=float(ms) + 3.0, rate_hz=20.0, dropped_frames=0), t)
    metrics, _ = evaluate_bag(str(bag2), eval_config(), policy=IndexPolicy())
    recorded = metrics["latency_recorded_on_robot"]
    values = inference.astype(np.float32).astype(np.float64)
    assert recorded["policy_inference"]["n"] == 50
    assert recorded["policy_inference"]["median_ms"] == pytest.approx(np.median(values), rel=1e-6)
    assert recorded["policy_inference"]["p95_ms"] == pytest.approx(np.percentile(values, 95), rel=1e-6)
    assert recorded["policy_end_to_end"]["max_ms"] == pytest.approx(values.max() + 3.0, rel=1e-6)
    assert recorded["policy_preprocess"]["median_ms"] == pytest.approx(1.0)


def test_behavior_metrics_match_direct_computation(tmp_path):
    bag = tmp_path / "imu"
    write_eval_bag(bag, "mcap")
    metrics, result = evaluate_bag(str(bag), eval_config(), behavior=GyroClassifier())
    stamps = np.asarray(result.window_ns)
    assert len(stamps) > 10 and np.all(np.diff(stamps) == 25 * IMU_NS)  # stride 25 at 50 Hz
    # truth: the segment covering >= half of each window's 100 samples (window_labels.window_label)
    samples = stamps[:, None] - IMU_NS * np.arange(99, -1, -1)[None, :]  # (windows, 100) sample stamps
    segment = (samples - T0) // (SEGMENT_S * 1_000_000_000)
    y_true = np.asarray([window_label(row) for row in segment], dtype=int)
    assert result.y_true == y_true.tolist()
    y_pred = np.minimum(segment[:, -1], 1)  # GyroClassifier reads the newest row
    behavior = metrics["behavior"]
    assert behavior["labelled_windows"] == len(stamps)
    assert behavior["accuracy"] == pytest.approx((y_true == y_pred).mean(), rel=1e-6)
    f1 = []
    for c in range(3):
        tp = np.sum((y_true == c) & (y_pred == c))
        precision = tp / max(np.sum(y_pred == c), 1)
        recall = tp / max(np.sum(y_true == c), 1)
        f1.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    assert behavior["macro_f1"] == pytest.approx(np.mean(f1), rel=1e-6)
    cm = np.zeros((3, 3), int)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    assert behavior["confusion_matrix"] == cm.tolist()
    counts = np.bincount(segment[:, -1], minlength=3)  # its code follows the newest row too
    p = counts[counts > 0] / counts.sum()
    assert behavior["fsq_codes"]["unique_codes"] == int((counts > 0).sum())
    assert behavior["fsq_codes"]["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)


def test_fast_mode_metrics_are_byte_identical_and_report_is_complete(tmp_path):
    bag = tmp_path / "drive"
    write_eval_bag(bag, "mcap", shape=(48, 64))
    outs = []
    for k in range(2):
        out = tmp_path / f"report{k}"
        assert cli_main(["eval", "--bag", str(bag), "--model", "heuristic", "--behavior-model", "heuristic",
                         "--fast", "--out", str(out)]) == 0
        outs.append(out)
    assert (outs[0] / "metrics.json").read_bytes() == (outs[1] / "metrics.json").read_bytes()
    for name in ("actions_vs_teleop.png", "horizon_error.png", "latency_hist.png"):
        assert (outs[0] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (outs[0] / "report.md").read_text()
    assert "Policy vs teleop" in report and "constant-mean MAE" in report and "![actions_vs_teleop.png]" in report


def test_report_has_confusion_matrix_and_comparison_is_side_by_side(tmp_path):
    bag = tmp_path / "drive"
    write_eval_bag(bag, "mcap")
    cfg = eval_config()
    good, res_good = evaluate_bag(str(bag), cfg, policy=IndexPolicy(0.0), behavior=GyroClassifier(),
                                  run_info={"mode": "fast", "model": "good", "backend": "fp32"})
    bad, res_bad = evaluate_bag(str(bag), cfg, policy=IndexPolicy(0.1), behavior=GyroClassifier(),
                                run_info={"mode": "fast", "model": "bad", "backend": "int8"})
    plots = write_report(tmp_path / "good", good, res_good, "good")
    assert "confusion_matrix.png" in plots
    assert good["policy"]["per_dimension"]["steering"]["mae"] == pytest.approx(0.0, abs=1e-6)  # float32 teleop
    agree = M.agreement(res_good, res_bad)
    j = np.arange(N)
    k = j % STEPS  # index within the executed chunk: the policies differ by 0.1*k before clipping to ±1
    diff = np.abs(np.clip(steering(j) + 0.1 * k, -1, 1) - np.clip(steering(j), -1, 1))
    assert agree["policy_mean_abs_diff"][0] == pytest.approx(diff.mean(), rel=1e-5)
    assert agree["policy_max_abs_diff"][0] == pytest.approx(diff.max(), rel=1e-5)
    assert agree["behavior_same_class"] == 1.0
    table = comparison_markdown(["good-fp32", "bad-int8"], [good, bad], [{}, {}], [{}, agree])
    assert f"| steering max abs diff vs good-fp32 | n/a | {diff.max():.3f} |" in table
    row = next(line for line in table.splitlines() if line.startswith("| steering MAE |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "0.000"
    assert float(cells[2]) == pytest.approx(bad["policy"]["per_dimension"]["steering"]["mae"], abs=1e-3)
    assert "| metric | good-fp32 | bad-int8 |" in table


def test_bad_input_is_counted_and_partial_bag_is_evaluated(tmp_path):
    bag = tmp_path / "bad"
    write_eval_bag(bag, "mcap", bad_encoding_every=5, backwards_frame=30, with_vendor_topic=True, shape=(96, 128))
    mcap_file = next(bag.glob("*.mcap"))
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: int(len(data) * 0.6)])  # recorder died
    (bag / "metadata.yaml").unlink()
    # Direct count of what the readable part holds.
    readable = [m for m in bag_io.read_bag(bag) if m.topic in ("/camera/image_raw", "/vehicle/state")]
    images = [m.msg for m in readable if m.msg.__msgtype__ == "sensor_msgs/msg/Image"]
    yuv = sum(1 for im in images if im.encoding == "yuv422")
    assert 0 < len(images) < N and yuv > 0
    out = tmp_path / "report"
    cfg = eval_config()
    metrics, result = evaluate_bag(str(bag), cfg, policy=IndexPolicy())
    write_report(out, metrics, result, "bad")
    assert metrics["bag"]["truncated"] and metrics["bag"]["salvaged"]
    assert not any(str(tmp_path) in w for w in metrics["bag"]["warnings"])  # location-independent metrics
    counts = metrics["replay_counts"]
    assert counts["wrong_type /vehicle/state (vendor_msgs/msg/Blob)"] == sum(
        1 for m in readable if m.topic == "/vehicle/state")
    # yuv frames are only decoded when the scheduler wants a chunk; all frames that
    # were needed but unusable are counted, and none is silently used.
    assert 0 < counts.get("unusable_image_encoding yuv422", 0) <= yuv
    if len(images) > 30:
        assert counts["non_monotonic_stamp /camera/image_raw"] == 1
    assert metrics["policy"]["scored_samples"] > 0  # evaluated as far as readable
    report = (out / "report.md").read_text()
    assert "damaged" in report and "unusable_image_encoding yuv422" in report and "wrong_type" in report


def test_missing_topics_give_clear_errors(tmp_path, capsys):
    bag = tmp_path / "mag_only"
    mag_cls = bag_io.msg_class("sensor_msgs/msg/MagneticField")
    vec = bag_io.msg_class("geometry_msgs/msg/Vector3")
    with BagWriter(bag) as w:
        w.write("/imu/mag", mag_cls(header=bag_io.make_header(T0), magnetic_field=vec(x=1e-5, y=0.0, z=0.0),
                                    magnetic_field_covariance=np.zeros(9)), T0)
    assert cli_main(["eval", "--bag", str(bag), "--model", "heuristic", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "nothing to evaluate" in err and "/camera/image_raw" in err and "/imu/mag" in err
    assert cli_main(["eval", "--bag", str(tmp_path / "absent"), "--model", "heuristic",
                     "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_simulated_latency_delays_chunks_and_drops_busy_frames(tmp_path):
    bag = tmp_path / "drive"
    write_eval_bag(bag, "mcap")
    metrics, result = evaluate_bag(str(bag), eval_config(sim_latency_ms=120.0), policy=IndexPolicy())
    # The first chunk arrives 120 ms after frame 0: ticks at 0, 50 and 100 ms have no action yet.
    assert result.neutral_reasons["no_chunk"] == 3
    assert metrics["replay_activity"]["frames_dropped_model_busy"] > 0
    assert metrics["replay_activity"]["scheduler actions_skipped"] > 0  # latency-aware alignment


def test_drive_summary_and_largest_errors_on_known_signals():
    t = T0 + np.arange(100, dtype=np.int64) * FRAME_NS
    t[50:] += 30 * 10**9  # a 30 s pause between two sessions
    steer = np.r_[np.full(40, 1.0), np.zeros(40), np.full(20, -0.5)]
    target = np.stack([steer, np.full(100, 0.4)], axis=1)
    drive = M.drive_summary(t, target)
    assert drive["segments"] == 2 and drive["driving_time_s"] == pytest.approx(98 * 0.05)
    assert (drive["steering_left_fraction"], drive["steering_straight_fraction"],
            drive["steering_right_fraction"], drive["steering_full_lock_fraction"]) == (0.4, 0.4, 0.2, 0.4)
    pred = steer.copy()
    pred[[10, 11, 70]] += [0.9, 1.0, 0.3]  # 10 and 11 are one moment; 70 another
    worst = M.largest_errors(t, pred, steer, count=3, separation_s=1.0)
    assert [w["stamp_ns"] for w in worst[:2]] == [int(t[11]), int(t[70])]
    assert worst[0]["abs_error"] == pytest.approx(1.0)


def test_match_times_and_classification_edge_cases():
    ref = np.array([0, 100, 200], dtype=np.int64)
    assert M.match_times(np.array([49, 51, 260, -60]), ref, 50).tolist() == [0, 1, -1, -1]
    got = M.classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), ["a", "b", "c"])
    # a: P=1 R=.5 F=2/3; b: P=1/3 R=1 F=.5; c: P=0 R=0 F=0
    assert got["accuracy"] == pytest.approx(0.5)
    assert got["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3, rel=1e-6)
    with pytest.raises(ValueError, match="class ids"):
        M.confusion_matrix(np.array([3]), np.array([0]), 3)
    assert M.code_usage(np.array([-1, -1]))["perplexity"] is None
    assert M.code_usage(np.array([5, 5, 7, 7]), 16)["perplexity"] == pytest.approx(2.0)


def test_state_resets_to_neutral_after_a_pause(tmp_path):
    """After a pause the bridge has timed out: the policy sees (0, 0), as the ACT dataset trains it."""
    bag = tmp_path / "two_sessions"
    store = bag_io.make_typestore()
    cmd_cls = store.types["edge_inference_msgs/msg/VehicleCommand"]
    stamps = [T0 + i * FRAME_NS for i in range(8)] + [T0 + 3 * 10**9 + i * FRAME_NS for i in range(8)]
    with BagWriter(bag, store=store) as w:
        for i, t in enumerate(stamps):
            rgb = np.zeros((8, 8, 3), np.uint8)
            rgb[0, 0, 0] = i
            w.write("/camera/image_raw", bag_io.rgb_to_image(rgb, t, store=store), t)
            w.write("/vehicle/command", cmd_cls(header=bag_io.make_header(t, store=store), steering=0.0,
                                                throttle=0.5, source=2), t + 1)
    cfg = ReplayConfig(scheduler=SchedulerConfig(mode="queue", n_action_steps=1, max_action_age=1.0))
    metrics, result = evaluate_bag(str(bag), cfg, policy=IndexPolicy())
    throttle_pred = np.stack(result.tick_pred)[:, 1]  # IndexPolicy's throttle = state throttle
    expected = np.array([0.0] + [0.5] * 7 + [0.0] + [0.5] * 7)  # zeros at the start and after the pause
    np.testing.assert_allclose(throttle_pred, expected, atol=1e-6)
    assert metrics["replay_activity"]["frames_after_pause (state reset to zeros)"] == 1
    assert metrics["replay_counts"]["frames_without_state (zeros used)"] == 1
