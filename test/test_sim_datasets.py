"""gen-demos: demonstration arrays, the rosbag2 they are also written to, and IMU behavior windows."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge_inference.core.pwm_mapping import Calibration
from edge_inference.sim.behaviors import BEHAVIOR_CLASSES
from edge_inference.sim.demonstrations import DemoConfig, calibrated, generate_demos, imu_windows


@pytest.fixture(scope="module")
def gen_out(tmp_path_factory):
    from edge_inference.cli import main
    out = tmp_path_factory.mktemp("demos")
    assert main(["gen-demos", "--out", str(out), "--episodes", "2", "--seconds", "3", "--image-size", "36", "64",
                 "--bag-episodes", "1", "--imu-drives", "2"]) == 0
    return out


def test_demo_arrays_have_the_training_layout(gen_out):
    with np.load(gen_out / "demos.npz") as d:
        n = len(d["actions"])
        assert d["images"].shape == (n, 36, 64, 3) and d["images"].dtype == np.uint8
        assert d["states"].shape == d["actions"].shape == (n, 2)
        assert list(d["action_names"]) == ["steering", "throttle"]
        assert float(d["fps"]) == 30.0
        assert set(np.unique(d["episode_index"])) == {0, 1}
        assert np.all(np.abs(d["actions"]) <= 1.0)
        ep0 = d["episode_index"] == 0
        assert np.array_equal(d["frame_index"][ep0], np.arange(ep0.sum()))
        # the road is in the picture: grey asphalt dominates the lower half of every frame
        lower = d["images"][:, 20:].astype(int)
        grey = (lower.max(-1) - lower.min(-1)) < 25
        assert grey.mean() > 0.4
    summary = json.loads((gen_out / "summary.json").read_text())
    assert summary["frames"] == n


def test_state_is_the_previous_applied_command():
    cfg = DemoConfig(episodes=1, seconds=2.0, image_size=(18, 32), steer_noise=0.0)
    d = generate_demos(cfg)
    cal = Calibration().validate()
    # with no injected noise the board applies the expert's previous command (after the µs round trip)
    for k in range(1, len(d["actions"])):
        assert np.allclose(d["states"][k], calibrated(cal, *map(float, d["actions"][k - 1])), atol=1e-6)
    assert np.all(d["states"][0] == 0)


def test_noise_injection_changes_what_is_executed_not_the_labels():
    clean = generate_demos(DemoConfig(episodes=1, seconds=3.0, image_size=(18, 32), steer_noise=0.0))
    noisy = generate_demos(DemoConfig(episodes=1, seconds=3.0, image_size=(18, 32), steer_noise=0.3))
    # states (what was executed) now differ from the expert's previous label by the disturbance
    lag = np.abs(noisy["states"][1:, 0] - noisy["actions"][:-1, 0])
    assert lag.mean() > 0.05
    assert np.abs(clean["states"][1:, 0] - clean["actions"][:-1, 0]).mean() < 0.01
    # the expert corrects the disturbance: labels steer against the accumulated offset
    assert not np.allclose(noisy["actions"], clean["actions"])


def test_bag_has_the_eval_topics_and_matches_the_arrays(gen_out):
    from edge_inference.core.bag_io import image_to_rgb, read_bag
    msgs = list(read_bag(gen_out / "bag"))
    topics = {m.topic for m in msgs}
    assert {"/camera/image_raw", "/vehicle/command", "/vehicle/state", "/imu/data_raw", "/imu/mag",
            "/behavior/label", "/sim/pose"} <= topics
    images = [m for m in msgs if m.topic == "/camera/image_raw"]
    commands = [m for m in msgs if m.topic == "/vehicle/command"]
    assert len(images) == len(commands) == 90           # 1 episode x 3 s x 30 fps
    assert image_to_rgb(images[0].msg).shape == (180, 320, 3)
    with np.load(gen_out / "demos.npz") as d:
        ep0 = d["actions"][d["episode_index"] == 0]
    got = np.array([[m.msg.steering, m.msg.throttle] for m in commands], np.float32)
    assert np.allclose(got, ep0, atol=1e-6)
    imu = [m for m in msgs if m.topic == "/imu/data_raw"]
    assert len(imu) == 3 * len(images)                   # physics sub-steps
    assert all(abs(m.msg.linear_acceleration.z - 9.81) < 1.0 for m in imu)
    labels = {m.msg.label for m in msgs if m.topic == "/behavior/label"}
    assert labels <= set(BEHAVIOR_CLASSES)


def test_imu_windows_are_labelled_and_split_by_drive(gen_out):
    from edge_inference.datasets.imu_windows import load_labelled_windows
    ws = load_labelled_windows(gen_out / "imu_windows.npz")
    with np.load(gen_out / "imu_windows.npz") as d:
        assert d["windows"].shape[1:] == (100, 9)
        assert set(np.unique(d["users"])) == {0, 1}
        assert list(d["class_names"]) == list(BEHAVIOR_CLASSES)
        w, labels = d["windows"], d["labels"]
    # physics, not labels, decide: stationary windows have no rotation, turns rotate the right way
    gyro_z = np.median(w[:, :, 5], axis=1)  # majority-labelled windows: the median sample decides
    assert np.all(np.abs(gyro_z[labels == "stationary"]) < 0.05)
    assert np.all(gyro_z[labels == "turn_left"] > 0.2) and np.all(gyro_z[labels == "turn_right"] < -0.2)
    assert np.all(np.abs(w[:, :, 2].mean(1) - 9.81) < 0.5)  # accel z: gravity
    assert ws is not None


def test_imu_windows_cover_every_behavior():
    d = imu_windows(n_drives=2, segments=30, seed=3)
    assert set(d["labels"]) == set(BEHAVIOR_CLASSES)
    mag = d["windows"][:, :, 6:9]
    assert np.allclose(np.linalg.norm(mag, axis=-1).mean(), math.hypot(22e-6, 42e-6), rtol=0.05)
