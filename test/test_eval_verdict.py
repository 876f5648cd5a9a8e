"""What the report concludes: the policy against its strongest camera-blind baseline, without its camera,
after pauses, and on a held-out tail shared with train-act. Real rosbag2 files, policies with known behavior."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_eval import FRAME_NS, HORIZON, T0, IndexPolicy, N, eval_config, write_eval_bag  # sibling test module

from edge_inference.cli import main as cli_main
from edge_inference.core import bag_io
from edge_inference.core.bag_io import BagWriter
from edge_inference.core.chunk_scheduler import SchedulerConfig
from edge_inference.datasets.holdout import frame_stamps, tail_split
from edge_inference.evaluation import metrics as M
from edge_inference.evaluation.camera_ablation import camera_ablation
from edge_inference.evaluation.replay import ReplayConfig, evaluate_bag
from edge_inference.evaluation.report import markdown


class StateFollower:
    """Camera-blind: steering = gain x state steering, throttle = the state's (or `after_pause` when it is 0)."""

    action_names = ["steering", "throttle"]
    dt = FRAME_NS / 1e9
    chunk_size = HORIZON

    def __init__(self, gain: float = 1.0, after_pause: float | None = None):
        self.gain, self.after_pause = gain, after_pause

    def predict(self, image_rgb, state):
        throttle = self.after_pause if self.after_pause is not None and state[1] == 0.0 else state[1]
        return np.tile([self.gain * state[0], throttle], (HORIZON, 1))


def test_headline_names_the_strongest_baseline_when_the_policy_passes_the_constant_mean_goal(tmp_path):
    """Overshooting the state by 40% passes 'ratio vs constant mean <= 0.70' but loses to holding the state."""
    bag = tmp_path / "drive"
    write_eval_bag(bag)
    metrics, result = evaluate_bag(str(bag), eval_config(), StateFollower(gain=1.4), run_info={})
    policy = metrics["policy"]
    assert policy["steering_mae_vs_constant_mean"] < 0.70
    versus = policy["versus_strongest_baseline"]
    hold = policy["baseline_hold_state_per_chunk"]["steering"]["mae"]
    assert versus["strongest"] == "hold state per chunk" and versus["strongest_mae"] == pytest.approx(hold)
    assert versus["baselines_mae"]["constant mean"] == pytest.approx(
        policy["baseline_constant_mean"]["steering"]["mae"])
    assert versus["policy_mae"] == pytest.approx(policy["per_dimension"]["steering"]["mae"])
    assert versus["outcome"] == "loses to" and versus["policy_minus_strongest"]["ci95"][0] > 0
    text = markdown(metrics, {}, [])
    assert "**The policy LOSES TO the strongest camera-blind baseline, hold state per chunk**" in text
    assert text.index("## Verdict") < text.index("## Policy vs teleop")


def test_paired_difference_and_verdicts_on_known_errors():
    rng = np.random.default_rng(1)
    base = np.abs(rng.normal(size=2000))
    better = M.paired_difference(base - 0.2, base)
    assert better["mean_diff"] == pytest.approx(-0.2) and M.verdict(better) == "lower"
    noise = M.paired_difference(base + rng.normal(scale=0.5, size=base.size), base)
    assert noise["ci95"][0] < 0 < noise["ci95"][1] and M.verdict(noise) == "within noise"
    assert M.paired_difference(base, base) == M.paired_difference(base, base)  # seeded: reproducible
    tiny = M.paired_difference(base + 0.001, base)  # certain, but 0.1% of the error: no practical difference
    assert M.verdict(tiny) == "higher" and M.verdict(tiny, reference_mae=base.mean()) == "negligible"
    target = np.sin(np.arange(2000) / 9.0)
    versus = M.versus_strongest_baseline(target + 0.05, target, {"constant mean": np.zeros_like(target),
                                                                 "hold": target + 0.3})
    assert versus["strongest"] == "hold" and versus["outcome"] == "beats"


def test_throttle_of_the_first_chunk_after_each_pause_is_compared_with_the_teleop(tmp_path):
    """A policy that brakes when the state is neutral reverses at the start and after the pause: 2 of 2."""
    bag = tmp_path / "two_sessions"
    store = bag_io.make_typestore()
    cmd_cls = store.types["edge_inference_msgs/msg/VehicleCommand"]
    stamps = [T0 + i * FRAME_NS for i in range(8)] + [T0 + 3 * 10**9 + i * FRAME_NS for i in range(8)]
    with BagWriter(bag, store=store) as w:
        for t in stamps:
            w.write("/camera/image_raw", bag_io.rgb_to_image(np.zeros((8, 8, 3), np.uint8), t, store=store), t)
            w.write("/vehicle/command", cmd_cls(header=bag_io.make_header(t, store=store), steering=0.0,
                                                throttle=0.5, source=2), t + 1)
    cfg = ReplayConfig(scheduler=SchedulerConfig(mode="queue", n_action_steps=4, max_action_age=1.0))
    metrics, _ = evaluate_bag(str(bag), cfg, StateFollower(after_pause=-0.6))
    pauses = metrics["policy"]["throttle_after_pauses"]
    assert (pauses["chunks"], pauses["disagree"], pauses["reversed"]) == (2, 2, 2)
    assert pauses["policy_throttle_mean"] == pytest.approx(-0.6) and pauses["teleop_throttle_mean"] == 0.5
    assert pauses["negative_throttle_ticks_policy"] == pytest.approx(8 / 16)  # the first chunk (4 ticks) twice
    assert pauses["negative_throttle_ticks_teleop"] == 0.0
    calm, _ = evaluate_bag(str(bag), cfg, StateFollower(after_pause=0.5))
    assert calm["policy"]["throttle_after_pauses"]["reversed"] == 0
    text = markdown({**metrics, "run": {"bag": "b", "sim_latency_ms": 0, "scheduler_mode": "queue"},
                     "bag": _bag_info(metrics)}, {}, [])
    assert "reversed in 2 (100%)" in text
    # The span (3.35 s) and the driving time (2 x 7 frames x 50 ms) are both stated.
    assert "3.35 s from first to last message, of which 0.7 s driving" in text


def _bag_info(metrics: dict) -> dict:
    return {"storage": "mcap", "messages_read": 32, "duration_s": 3.35, "driving_time_s": 0.7, "salvaged": False,
            "truncated": False, "skipped": {}, "warnings": []}


def test_report_states_the_driving_time_next_to_the_bag_span(tmp_path):
    bag = tmp_path / "drive"
    write_eval_bag(bag)
    out = tmp_path / "report"
    assert cli_main(["eval", "--bag", str(bag), "--model", "heuristic", "--out", str(out),
                     "--no-camera-ablation"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bag"]["driving_time_s"] == pytest.approx((N - 1) * FRAME_NS / 1e9)
    span = metrics["bag"]["duration_s"]
    assert f"{span} s from first to last message, of which 3.0 s driving" in (out / "report.md").read_text()


def test_camera_ablation_separates_a_policy_that_reads_the_frame_from_one_that_does_not(tmp_path):
    bag = tmp_path / "drive"
    write_eval_bag(bag)
    cfg = eval_config()
    _, result = evaluate_bag(str(bag), cfg, IndexPolicy())
    seeing = camera_ablation(bag, cfg, IndexPolicy(), result)
    assert seeing["camera"] == "matters" and seeing["pool_frames"] == N
    assert seeing["ablated_minus_full_steering_mae"]["ci95"][0] > 0.1
    _, result = evaluate_bag(str(bag), cfg, StateFollower())
    blind = camera_ablation(bag, cfg, StateFollower(), result)
    assert blind["camera"] == "does not measurably matter"
    assert blind["ablated_minus_full_steering_mae"]["mean_diff"] == 0.0
    # Through the CLI: the report says it in plain words, beside the full policy.
    out = tmp_path / "report"
    assert cli_main(["eval", "--bag", str(bag), "--model", "heuristic", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["policy"]["camera_ablation"]["replacement"].startswith("shuffled frames")
    text = (out / "report.md").read_text()
    assert "Camera ablation (shuffled frames" in text and "| steering, camera ablated |" in text


def test_holdout_tail_is_the_same_frames_in_train_act_and_eval(tmp_path, capsys):
    pytest.importorskip("torch")
    from edge_inference.models.act.checkpoint import load_act

    bag = tmp_path / "drive"
    write_eval_bag(bag)
    split = tail_split(frame_stamps(bag), 0.25, gap_s=0.5)
    assert split.start_ns == T0 + 45 * FRAME_NS and split.train_end_ns == T0 + 35 * FRAME_NS
    out = tmp_path / "act"
    assert cli_main(["train-act", "--data", str(bag), "--holdout-tail", "0.25", "--gap-s", "0.5", "--small",
                     "--max-steps", "1", "--device", "cpu", "--threads", "1", "--out", str(out)]) == 0
    _, _, meta = load_act(out)
    assert meta["frames"] == 35 and meta["holdout"]["test_frames"] == 15  # 10 gap frames in neither
    assert meta["holdout"]["start_ns"] == split.start_ns
    assert json.loads((out / "metrics.json").read_text())["frames"] == 15  # scored on the tail
    report = tmp_path / "report"
    assert cli_main(["eval", "--bag", str(bag), "--model", "heuristic", "--holdout-tail", "0.25",
                     "--no-camera-ablation", "--out", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["policy"]["teleop_samples"] == 15 and metrics["policy"]["scored_from_ns"] == split.start_ns
    assert metrics["drive"]["teleop_samples"] == 15
    assert "held-out tail, the last 0.25" in (report / "report.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as rejected:  # argparse's type check, before any work
        cli_main(["train-act", "--data", str(bag), "--holdout-tail", "1.5", "--small", "--out", str(tmp_path / "bad")])
    assert rejected.value.code == 2 and "error: argument --holdout-tail" in capsys.readouterr().err
    assert cli_main(["eval", "--bag", str(bag), "--model", "heuristic", "--holdout-tail", "1.5",
                     "--out", str(tmp_path / "bad_report")]) == 2
    assert "error: holdout tail fraction must be in (0, 1)" in capsys.readouterr().err


def test_hold_state_error_along_the_chunk_is_the_camera_blind_policys(tmp_path):
    """A policy that repeats its state input has exactly the hold-state line along the horizon."""
    bag = tmp_path / "drive"
    write_eval_bag(bag)
    metrics, _ = evaluate_bag(str(bag), eval_config(), StateFollower())
    policy = metrics["policy"]
    assert policy["horizon_mae_hold_state"] == policy["horizon_mae"]
    seeing, _ = evaluate_bag(str(bag), eval_config(), IndexPolicy())  # knows the future: 0.02 per step off
    assert seeing["policy"]["horizon_mae_hold_state"] == policy["horizon_mae"]
    assert seeing["policy"]["horizon_mae"]["steering"][:4] == pytest.approx([0.0, 0.02, 0.04, 0.06], abs=1e-6)
