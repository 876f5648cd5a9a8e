"""train-act and its data loaders on real stand-ins: a slice of a real Donkey tub, gen-demos arrays, a rosbag2."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import needs_torch

from edge_inference.cli import main
from edge_inference.models.act.dataset import Demonstrations, load_bag, load_npz, load_tubs

DONKEY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "donkey"
needs_donkey = pytest.mark.skipif(not (DONKEY / "data" / "manifest.json").is_file(),
                                  reason=f"real Donkey tubs not found at {DONKEY}")


@needs_torch
@needs_donkey
def test_train_act_one_tiny_epoch_on_a_real_tub_slice(tmp_path, capsys):
    from edge_inference.models.act.checkpoint import load_act

    out = tmp_path / "act"
    rc = main(["train-act", "--data", str(DONKEY / "data"), "--eval-data", str(DONKEY / "data_2"), "--limit", "40",
               "--small", "--max-steps", "2", "--device", "cpu", "--threads", "1", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and "unseen drive" in text
    module, config, meta = load_act(out)
    assert (config.image_size, config.chunk_size, meta["format"]) == ((48, 64), 8, "edge_inference")
    assert 15.0 < meta["fps"] < 25.0  # the tubs are recorded at about 20 Hz
    assert meta["data"] == [str(DONKEY / "data")] and meta["training"]["history"]["epochs"]
    with np.load(out / "calibration.npz") as cal:
        assert cal["image"].shape[1:] == (3, 48, 64) and 0.0 <= cal["image"].min() and cal["image"].max() <= 1.0
        assert cal["state"].shape == (len(cal["image"]), 2)
    metrics = json.loads((out / "metrics.json").read_text())
    steering = metrics["per_action"]["steering"]
    assert metrics["frames"] == 40 and steering["mae"] >= 0.0 and steering["constant_mean_mae"] > 0.0
    # The checkpoint goes through the team's export as written: ONNX parity on calibration.npz, Hailo split.
    capsys.readouterr()
    assert main(["export", "--model", str(out), "--split"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert (out / "npu.onnx").is_file() and (out / "host.onnx").is_file()


@needs_donkey
def test_tub_state_is_the_previous_command_within_a_segment():
    data = load_tubs([DONKEY / "data"], (48, 64), limit=60)
    assert data.images.shape == (60, 48, 64, 3) and data.images.dtype == np.uint8
    first = np.r_[True, data.segments[1:] != data.segments[:-1]]
    assert np.all(data.states[first] == 0.0)
    inner = np.flatnonzero(~first)
    assert np.array_equal(data.states[inner], data.actions[inner - 1])


def test_chunks_never_cross_a_segment_and_padding_is_marked():
    n = 6
    data = Demonstrations(np.zeros((n, 4, 4, 3), np.uint8), np.zeros((n, 2), np.float32),
                          np.arange(2 * n, dtype=np.float32).reshape(n, 2), np.array([0, 0, 0, 1, 1, 1]), 20.0,
                          ["steering", "throttle"], "test")
    idx, pad = data.chunk_index(4)
    assert idx[1].tolist() == [1, 2, 2, 2] and pad[1].tolist() == [False, False, True, True]
    assert idx[3].tolist() == [3, 4, 5, 5] and pad[3].tolist() == [False, False, False, True]


@needs_torch
def test_train_act_on_gen_demos_arrays_and_bad_arrays(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 24
    demos = tmp_path / "demos.npz"
    np.savez(demos, images=rng.integers(0, 255, (n, 36, 64, 3), dtype=np.uint8),
             states=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
             actions=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
             episode_index=np.repeat([0, 1], n // 2), fps=np.float64(30.0), action_names=np.array(["steer", "gas"]))
    data = load_npz(demos, (48, 64))
    assert data.images.shape == (n, 48, 64, 3) and data.action_names == ["steer", "gas"] and data.fps == 30.0
    assert main(["train-act", "--data", str(demos), "--small", "--max-steps", "1", "--device", "cpu",
                 "--out", str(tmp_path / "act")]) == 0
    # the checkpoint asks for temporal ensembling, as LeRobot's select_action and the policy node read it
    written = json.loads((tmp_path / "act" / "config.json").read_text())
    assert (written["n_action_steps"], written["temporal_ensemble_coeff"]) == (1, 0.01)
    assert main(["train-act", "--data", str(demos), "--small", "--max-steps", "1", "--device", "cpu",
                 "--n-action-steps", "4", "--out", str(tmp_path / "queue")]) == 0
    written = json.loads((tmp_path / "queue" / "config.json").read_text())
    assert (written["n_action_steps"], written["temporal_ensemble_coeff"]) == (4, None)
    capsys.readouterr()
    assert main(["train-act", "--data", str(demos), "--small", "--n-action-steps", "4", "--temporal-ensemble-coeff",
                 "0.01", "--out", str(tmp_path / "both")]) == 2
    assert "--temporal-ensemble-coeff needs --n-action-steps 1" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()
    # LeRobot's CVAE objective: the VAE encoder is trained and saved (LeRobot needs it), then dropped at load.
    from safetensors import safe_open

    from edge_inference.models.act.checkpoint import load_act
    assert main(["train-act", "--data", str(demos), "--small", "--use-vae", "--max-steps", "1", "--device", "cpu",
                 "--out", str(tmp_path / "vae")]) == 0
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["use_vae"] is True
    with safe_open(str(tmp_path / "vae" / "model.safetensors"), "pt") as f:
        assert {"model.vae_encoder_pos_enc", "model.vae_encoder.layers.0.linear1.weight"} <= set(f.keys())
    module, config, _ = load_act(tmp_path / "vae")
    assert config.use_vae and not any(k.startswith("model.vae_encoder") for k in module.state_dict())
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 8, 8, 3), np.uint8), actions=np.zeros((2, 2), np.float32))
    capsys.readouterr()
    assert main(["train-act", "--data", str(bad), "--small", "--out", str(tmp_path / "x")]) == 2
    assert "missing array(s) ['states']" in capsys.readouterr().err


def test_rosbag_frames_get_the_nearest_command_and_previous_command_state(tmp_path):
    from edge_inference.core import bag_io

    bag = tmp_path / "drive"
    cmd_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleCommand")
    t0, period = 1_000_000_000, 50_000_000  # 20 Hz
    with bag_io.BagWriter(bag) as writer:
        for i in range(6):
            t = t0 + i * period
            rgb = np.full((30, 40, 3), 40 * i, np.uint8)
            writer.write("/camera/image_raw", bag_io.rgb_to_image(rgb, t), t)
            # commands 5 ms after the frame they answer: nearest in time, not the previous one
            writer.write("/vehicle/command", cmd_cls(header=bag_io.make_header(t + 5_000_000), steering=0.1 * i,
                                                     throttle=0.3, source=2), t + 5_000_000)
    data = load_bag(bag, (48, 64))
    assert data.images.shape == (6, 48, 64, 3)
    assert np.allclose(data.actions[:, 0], 0.1 * np.arange(6), atol=1e-6)
    assert np.allclose(data.states[1:], data.actions[:-1]) and np.all(data.states[0] == 0)
    assert data.fps == pytest.approx(20.0)


def test_rosbag_applied_state_is_matched_by_stamp_not_log_order(tmp_path):
    from edge_inference.core import bag_io

    bag = tmp_path / "drive"
    state_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleState")
    cmd_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleCommand")
    t0, period = 2_000_000_000, 50_000_000
    with bag_io.BagWriter(bag) as writer:
        for i in range(5):
            t = t0 + i * period
            writer.write("/camera/image_raw", bag_io.rgb_to_image(np.zeros((30, 40, 3), np.uint8), t), t)
            writer.write("/vehicle/command", cmd_cls(header=bag_io.make_header(t), steering=0.0, throttle=0.2,
                                                     source=2), t)
            # the state applied at the frame's stamp, logged after the frame (as gen-demos records it)
            writer.write("/vehicle/state", state_cls(
                header=bag_io.make_header(t), steering_us=1500, throttle_us=1500, steering=-0.1 * i,
                throttle=0.05 * i, mode=1, link=2, armed=True, failsafe_flags=0, rc_steering_us=0, rc_throttle_us=0,
                rc_mode_us=0, loop_time_us=0.0, rtt_ms=0.0), t)
    data = load_bag(bag, (48, 64))
    assert np.allclose(data.states[:, 0], -0.1 * np.arange(5), atol=1e-6)
    assert np.allclose(data.states[:, 1], 0.05 * np.arange(5), atol=1e-6)


@needs_torch
def test_training_options_are_validated():
    from edge_inference.models.act import ACTConfig
    from edge_inference.models.act.training import TrainConfig, train_act

    for bad in ({"state_dropout": 1.0}, {"val_fraction": 0.95}, {"device": "tpu"}, {"epochs": 0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    n = 12
    data = Demonstrations(np.zeros((n, 48, 64, 3), np.uint8), np.zeros((n, 2), np.float32),
                          np.zeros((n, 2), np.float32), np.zeros(n, np.int64), 20.0, ["gas", "steering"], "test")
    config = ACTConfig(image_size=(48, 64), chunk_size=4, n_action_steps=4, dim_model=32, n_heads=2,
                       dim_feedforward=64, n_encoder_layers=1, use_vae=False, action_names=["gas", "steering"])
    with pytest.raises(ValueError, match="flip_steering negates action 0, which is 'gas'"):
        train_act(data, config, TrainConfig(flip_steering=True, device="cpu"), log=lambda s: None)
    with pytest.raises(ValueError, match=r"images are \(48, 64\), config image_size \(96, 128\)"):
        train_act(data, ACTConfig(image_size=(96, 128), use_vae=False), TrainConfig(device="cpu"), log=lambda s: None)
