"""FSQ quantizer, IMU features, checkpoint format, labelled-window readers and train-fsq."""
from __future__ import annotations

import json

import numpy as np
import pytest
from model_fixtures import HAPT_ROOT, HAS_TORCH, imu_window, needs_torch

from edge_inference.models.fsq.codes import index_to_levels, levels_to_index
from edge_inference.models.fsq.configuration_fsq import FSQConfig
from edge_inference.models.fsq.features import (
    STANDARD_GRAVITY,
    WindowShapeError,
    unnormalized_features,
    window_to_input,
)

if HAS_TORCH:
    import torch
    from torch_models import tiny_fsq_checkpoint

    from edge_inference.models.fsq.quantizer import FSQ

LEVELS = [8, 6, 5, 5, 4]


@needs_torch
def test_fsq_levels_cover_exactly_each_dimension():
    fsq = FSQ(LEVELS)
    z = torch.linspace(-20, 20, 4001)[:, None].repeat(1, len(LEVELS))
    zhat, levels = fsq(z)
    for d, n_levels in enumerate(LEVELS):
        assert sorted(torch.unique(levels[:, d]).tolist()) == list(range(n_levels))
    assert zhat.min() >= -1 and zhat.max() <= 1


def test_code_index_is_a_bijection_over_4800_codes():
    all_codes = np.arange(4800)
    levels = index_to_levels(all_codes, LEVELS)
    assert np.array_equal(levels_to_index(levels, LEVELS), all_codes)
    assert levels.max(axis=0).tolist() == [n - 1 for n in LEVELS]
    with pytest.raises(ValueError, match="out of range"):
        levels_to_index(np.array([8, 0, 0, 0, 0]), LEVELS)


@needs_torch
def test_round_ste_passes_gradients_through_the_rounding():
    fsq = FSQ(LEVELS)
    z = torch.zeros(2, len(LEVELS), requires_grad=True)
    zhat, _ = fsq(z)
    zhat.sum().backward()
    assert torch.all(z.grad > 0)  # d tanh / dz > 0; plain round would give 0


def test_features_fill_row0_with_signal_and_row1_with_its_difference():
    window = imu_window()
    feats = unnormalized_features(window, "har9", 50.0)  # (9, 2, 100)
    assert feats.shape == (9, 2, 100)
    total_acc_g = window[:, 0:3].T / STANDARD_GRAVITY
    np.testing.assert_allclose(feats[6:9, 0], total_acc_g, rtol=1e-5)  # total_acc in g
    np.testing.assert_allclose(feats[:, 1, 1:], np.diff(feats[:, 0], axis=1), atol=1e-5)
    assert np.all(feats[:, 1, 0] == 0)
    # body acc = total - gravity: nearly zero-mean, gravity (~1 g on z) removed
    assert abs(feats[2, 0].mean()) < 0.05 and abs(feats[8, 0].mean() - 1.0) < 0.05


def test_zero_phase_lowpass_matrix_equals_the_sample_by_sample_filter():
    from edge_inference.models.fsq.features import lowpass_zero_phase

    x = np.random.default_rng(0).standard_normal((100, 3))
    alpha = 1.0 - np.exp(-2.0 * np.pi * 0.3 / 50.0)
    y, state = np.empty_like(x), x.mean(axis=0)
    for t in range(100):  # reference: the recursion written out
        state = state + alpha * (x[t] - state)
        y[t] = state
    for t in range(99, -1, -1):
        state = state + alpha * (y[t] - state)
        y[t] = state
    np.testing.assert_allclose(lowpass_zero_phase(x, 50.0, 0.3), y, atol=1e-10)
    batch = np.stack([x, 2 * x])
    np.testing.assert_allclose(lowpass_zero_phase(batch, 50.0, 0.3)[1], 2 * y, atol=1e-10)


def test_window_contract_errors_name_the_problem():
    mean, std = np.zeros((9, 2)), np.ones((9, 2))
    with pytest.raises(WindowShapeError, match="needs 100"):
        window_to_input(imu_window(80), "har9", 50.0, 100, mean, std)
    bad = imu_window()
    bad[3, 4] = np.nan
    with pytest.raises(WindowShapeError, match="NaN"):
        window_to_input(bad, "har9", 50.0, 100, mean, std)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="duplicates"):
        FSQConfig(class_names=["a", "a"])
    with pytest.raises(ValueError, match="unknown FSQConfig keys"):
        FSQConfig.from_dict({"class_names": ["a"], "colour": 1})


@needs_torch
def test_checkpoint_round_trip_and_bad_checkpoint_messages(tmp_path):
    from safetensors.torch import load_file, save_file

    from edge_inference.models.fsq.checkpoint import CheckpointError, load_fsq

    ckpt = tiny_fsq_checkpoint(tmp_path / "ok")
    model, config = load_fsq(ckpt)
    assert config.class_names == ["still", "walk", "turn"] and config.codebook_size == 4800
    state = load_file(str(ckpt / "model.safetensors"))
    del state["head.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \['head.0.weight'\].*unexpected keys \['extra.weight'\]"):
        load_fsq(ckpt)
    with pytest.raises(CheckpointError, match="no config.json"):
        load_fsq(tmp_path)


def test_npz_and_csv_labelled_windows(tmp_path):
    from edge_inference.datasets.imu_windows import load_labelled_windows

    windows = np.stack([imu_window(seed=i) for i in range(4)])
    np.savez(tmp_path / "w.npz", windows=windows, labels=np.array(["idle", "move", "idle", "move"]),
             users=np.array([1, 1, 2, 2]), sample_rate_hz=50.0)
    data = load_labelled_windows(tmp_path / "w.npz")
    assert data.class_names == ["idle", "move"] and data.labels.tolist() == [0, 1, 0, 1]
    rows = ["window,user,label,ax,ay,az,gx,gy,gz,mx,my,mz"]
    for w in range(2):
        for t in range(100):
            rows.append(f"{w},{w + 1},{w}," + ",".join(f"{v:.6g}" for v in windows[w, t]))
    (tmp_path / "w.csv").write_text("\n".join(rows))
    data = load_labelled_windows(tmp_path / "w.csv", sample_rate_hz=50.0)
    assert data.windows.shape == (2, 100, 9) and data.users.tolist() == [1, 2]
    np.testing.assert_allclose(data.windows[1], windows[1], rtol=1e-5)
    with pytest.raises(ValueError, match="sample rate unknown"):
        load_labelled_windows(tmp_path / "w.csv")


@needs_torch
@pytest.mark.skipif(not HAPT_ROOT.is_dir(), reason=f"UCI HAPT data not found at {HAPT_ROOT}")
def test_train_fsq_on_a_hapt_slice_splits_by_user_and_reports(tmp_path):
    from edge_inference.cli import main

    out = tmp_path / "fsq"
    assert main(["train-fsq", "--data", str(HAPT_ROOT), "--users", "1,2,3", "--test-users", "3",
                              "--epochs", "3", "--conv-channels", "8,16", "--out", str(out), "--export"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"]["test_users"] == [3] and 3 not in report["split"]["train_users"]
    assert len(report["confusion_matrix"]) == 6 and report["n"] == sum(map(sum, report["confusion_matrix"]))
    assert report["accuracy"] > 0.5  # six classes: chance is ~0.17
    assert 1 <= report["code_usage"]["unique_codes"] <= 4800 and report["code_usage"]["perplexity"] >= 1
    config = json.loads((out / "config.json").read_text())
    assert config["class_names"][0] == "WALKING" and len(config["feature_mean"]) == 9
    assert (out / "model.onnx").is_file()
