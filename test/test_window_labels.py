"""The streamed labelling rule, streamed HAPT windows (= the node's windower) and FSQ training augmentation."""
from __future__ import annotations

import numpy as np
import pytest
from model_fixtures import HAS_TORCH, needs_torch

if HAS_TORCH:  # the augmentation tests; the labelling rule needs no torch
    import torch

from edge_inference.evaluation.window_labels import MIXED, TRANSITION, UNLABELLED, excluded_counts, window_label, window_labels

W, S, L, T, U = 0, 3, 4, TRANSITION, UNLABELLED  # WALKING, SITTING, STANDING


def test_window_label_is_the_annotation_covering_half_the_window():
    assert window_label([S] * 100) == S
    assert window_label([S] * 49 + [L] * 51) == L  # a window straddling SIT -> STAND: majority
    assert window_label([S] * 51 + [L] * 49) == S  # the newest sample alone would say STANDING
    assert window_label([S] * 30 + [T] * 60 + [L] * 10) == TRANSITION
    assert window_label([U] * 70 + [W] * 30) == UNLABELLED
    assert window_label([S] * 40 + [T] * 30 + [L] * 30) == MIXED  # no annotation covers half
    assert window_label([]) == MIXED


def test_window_label_tie_at_exactly_half_goes_to_the_newer_annotation():
    assert window_label([S] * 50 + [L] * 50) == L
    assert window_label([L] * 50 + [S] * 50) == S
    assert window_label([S] * 50 + [T] * 50) == TRANSITION
    assert window_label([S] * 60 + [L] * 40, min_fraction=0.7) == MIXED


def test_window_labels_cuts_windows_ending_at_the_given_samples():
    per_sample = np.array([S] * 150 + [T] * 40 + [L] * 150)
    ends = np.arange(99, per_sample.size, 25)
    got = window_labels(per_sample, ends, 100)
    assert got.tolist() == [window_label(per_sample[e - 99:e + 1]) for e in ends]
    assert got[0] == S and got[-1] == L and TRANSITION not in got.tolist()  # 40 transition samples < half


def test_excluded_windows_are_counted_and_transition_predictions_reported():
    y_true = [S, L, T, T, U, MIXED]
    y_pred = [S, S, L, W, W, L]
    counts = excluded_counts(y_true, y_pred, ["WALKING", "UP", "DOWN", "SITTING", "STANDING", "LAYING"])
    assert (counts["transition"], counts["unlabelled"], counts["mixed"]) == (2, 1, 1)
    assert counts["transition_predicted_as"] == {"WALKING": 1, "UP": 0, "DOWN": 0, "SITTING": 0, "STANDING": 1,
                                                 "LAYING": 0}


def _tiny_hapt(root, n=700):
    """A fake HAPT folder: one recording, SITTING, a transition, STANDING, an unannotated tail."""
    raw = root / "RawData"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savetxt(raw / "acc_exp01_user01.txt", rng.normal(0, 0.1, (n, 3)) + [1.0, 0.0, 0.0])
    np.savetxt(raw / "gyro_exp01_user01.txt", rng.normal(0, 0.1, (n, 3)))
    # exp user activity start end (1-based inclusive): SITTING 1-300, STAND_TO_SIT... SIT_TO_STAND 301-360,
    # STANDING 361-600, then nothing.
    np.savetxt(raw / "labels.txt", np.array([[1, 1, 4, 1, 300], [1, 1, 8, 301, 360], [1, 1, 5, 361, 600]]),
               fmt="%d")
    names = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING", "STAND_TO_SIT",
             "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND"]
    (root / "activity_labels.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(names)))
    return root


def test_streamed_hapt_windows_are_the_windows_the_node_cuts(tmp_path):
    from edge_inference.core.imu_window import ImuWindower, WindowConfig
    from edge_inference.datasets.hapt import _read_recording, load_hapt_streamed

    root = _tiny_hapt(tmp_path / "hapt")
    data = load_hapt_streamed(root, 100, 25)
    signal = _read_recording(root / "RawData", 1, 1)
    windower = ImuWindower(WindowConfig(window_length=100, sample_rate_hz=50.0, stride=25))
    node = [w.data for i, row in enumerate(signal)
            for w in windower.add_imu(i * 20_000_000, row[:3], row[3:6])]
    assert len(node) == len(data) > 20
    np.testing.assert_allclose(data.windows[:, :, :6], np.stack(node)[:, :, :6], rtol=1e-6, atol=1e-6)
    labels = data.labels.tolist()
    assert labels[0] == 3 and 4 in labels and set(data.recordings.tolist()) == {1}
    assert labels[-1] == UNLABELLED  # the last windows are mostly the unannotated tail
    # window ending at sample 349 (0-based): samples 250..349 = 50 SITTING + 50 transition -> tie, newer wins
    assert labels[(349 - 99) // 25] == TRANSITION


@needs_torch
def test_random_rotations_are_proper_and_bounded():
    from edge_inference.models.fsq.training import random_rotations

    r = random_rotations(500, 30.0, torch.Generator().manual_seed(0))
    eye = torch.eye(3).expand(500, 3, 3)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(500), atol=1e-5, rtol=0)
    angle = torch.rad2deg(torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1)))
    assert angle.max() <= 30.0 + 1e-3 and angle.max() > 25.0
    torch.testing.assert_close(random_rotations(4, 0.0), torch.eye(3).expand(4, 3, 3))


@needs_torch
def test_rotating_features_equals_features_of_the_rotated_device():
    """The augmentation rotates cached features; that must equal recomputing them from rotated raw IMU data."""
    from edge_inference.models.fsq.features import unnormalized_features
    from edge_inference.models.fsq.training import random_rotations, rotate_features

    rng = np.random.default_rng(1)
    raw = rng.normal(0, 1, (4, 100, 9)).astype(np.float32)
    raw[..., 2] += 9.8
    rot = random_rotations(4, 180.0, torch.Generator().manual_seed(1))
    rotated_raw = raw.copy()
    rotated_raw[..., 0:3] = np.einsum("bij,btj->bti", rot.numpy(), raw[..., 0:3])
    rotated_raw[..., 3:6] = np.einsum("bij,btj->bti", rot.numpy(), raw[..., 3:6])
    expected = unnormalized_features(rotated_raw, "har9", 50.0)
    got = rotate_features(torch.from_numpy(unnormalized_features(raw, "har9", 50.0)), rot).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # the norm of each xyz triple (e.g. |total_acc|) is what a rotation keeps
    np.testing.assert_allclose(np.linalg.norm(got[:, 6:9], axis=1), np.linalg.norm(expected[:, 6:9], axis=1),
                               atol=2e-5)


@needs_torch
def test_augment_applies_the_gain_and_no_op_when_off():
    from edge_inference.models.fsq.training import TrainConfig, augment

    x = torch.randn(8, 9, 2, 100)
    off = TrainConfig(rotation_deg=0.0, scale_jitter=0.0)
    torch.testing.assert_close(augment(x, off), x)
    gained = augment(x, TrainConfig(rotation_deg=0.0, scale_jitter=0.2))
    ratio = (gained / x).reshape(8, -1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4)  # one gain per window
    assert ratio[:, 0].min() >= 0.8 - 1e-6 and ratio[:, 0].max() <= 1.2 + 1e-6


def test_eval_and_training_label_a_streamed_recording_identically(tmp_path):
    """eval (bag of label segments -> replay) and train-fsq (labels.txt -> streamed windows) share one rule."""
    from edge_inference.core.imu_window import WindowConfig
    from edge_inference.datasets.hapt import BASIC_ACTIVITIES, load_hapt_streamed
    from edge_inference.evaluation.hapt_bag import write_hapt_bag
    from edge_inference.evaluation.replay import ReplayConfig, evaluate_bag

    class AlwaysStanding:  # a behavior runner that always says STANDING
        class_names = list(BASIC_ACTIVITIES)
        window_length, sample_rate_hz = 100, 50.0

        def predict(self, window):
            return np.eye(6, dtype=np.float32)[4], 0

    root = _tiny_hapt(tmp_path / "hapt")
    write_hapt_bag(root, 1, 1, tmp_path / "bag", list(BASIC_ACTIVITIES))
    metrics, result = evaluate_bag(str(tmp_path / "bag"), ReplayConfig(window=WindowConfig(stride=25)),
                                   behavior=AlwaysStanding())
    streamed = load_hapt_streamed(root, 100, 25)
    assert result.y_true == streamed.labels.tolist()
    behavior = metrics["behavior"]
    scored = streamed.labels >= 0
    assert behavior["labelled_windows"] == int(scored.sum())
    assert behavior["accuracy"] == pytest.approx(float((streamed.labels[scored] == 4).mean()), rel=1e-6)
    ns = behavior["not_scored"]
    assert ns["transition"] == int((streamed.labels == TRANSITION).sum()) > 0
    assert ns["unlabelled"] == int((streamed.labels == UNLABELLED).sum()) > 0
    assert ns["transition_predicted_as"]["STANDING"] == ns["transition"]


@needs_torch
@pytest.mark.parametrize("x_rotation_deg", [180.0, 360.0])  # 360: a 0 or 180 degree flip only
def test_x_axis_rotation_keeps_the_vertical_axis_and_turns_the_others(x_rotation_deg):
    from edge_inference.models.fsq.training import TrainConfig, augment

    x = torch.randn(16, 9, 2, 100)
    y = augment(x, TrainConfig(x_rotation_deg=x_rotation_deg, rotation_deg=0.0, scale_jitter=0.0))
    torch.testing.assert_close(y[:, 0::3], x[:, 0::3])  # x of body_acc, gyro, total_acc unchanged
    norm = lambda t: t.reshape(16, 3, 3, 2, 100)[:, :, 1:].norm(dim=2)  # noqa: E731 (|yz| per triple)
    torch.testing.assert_close(norm(y), norm(x), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(y[:, 1::3], x[:, 1::3])
    if x_rotation_deg == 360.0:  # each window either unchanged or with y and z negated
        same = (y[:, 1::3] - x[:, 1::3]).abs().amax(dim=(1, 2, 3)) < 1e-5
        flipped = (y[:, 1::3] + x[:, 1::3]).abs().amax(dim=(1, 2, 3)) < 1e-5
        assert bool((same | flipped).all()) and same.any() and flipped.any()
