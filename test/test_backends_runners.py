"""Backend registry + runners: same outputs whatever the backend, clear errors, no torch on the robot path."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from model_fixtures import ACT_RUNTIME, HAS_TORCH, NO_TORCH, act_samples, imu_window, needs_torch
from onnx_models import tiny_act_model, tiny_act_reference, tiny_fsq_model, tiny_fsq_reference

from edge_inference.backends import BackendError, create_backend
from edge_inference.backends.runners import ModelKindError, create_behavior_runner, create_policy_runner
from edge_inference.deploy.onnx_export import export_fsq_onnx
from edge_inference.deploy.quantization import quantize_onnx_static

if HAS_TORCH:
    from torch_models import tiny_fsq_checkpoint


@pytest.fixture(scope="module")
def fsq_dir(request, tmp_path_factory):
    """FSQ model dir with model.onnx + model.int8.onnx: built with onnx.helper, or (indirect
    parameter "torch") a torch checkpoint and its export, for the torch backends."""
    if getattr(request, "param", "onnx") == "torch":
        pytest.importorskip("torch", reason=NO_TORCH)
        ckpt = tiny_fsq_checkpoint(tmp_path_factory.mktemp("fsq_torch") / "fsq")
        export_fsq_onnx(ckpt, ckpt / "model.onnx")
    else:
        ckpt = tiny_fsq_model(tmp_path_factory.mktemp("fsq") / "fsq")
    calib = np.random.default_rng(0).standard_normal((16, 9, 2, 100)).astype(np.float32)
    np.savez(ckpt / "calibration.npz", imu=calib)
    quantize_onnx_static(ckpt / "model.onnx", ckpt / "model.int8.onnx", {"imu": calib})
    return ckpt


@pytest.fixture(scope="module")
def act_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("act")
    tiny_act_model(out / "model.onnx", ACT_RUNTIME)
    quantize_onnx_static(out / "model.onnx", out / "model.int8.onnx", act_samples(16))
    return out


@pytest.mark.parametrize("fsq_dir, backend", [
    pytest.param("torch", "torch", marks=needs_torch), pytest.param("torch", "torch-int8", marks=needs_torch),
    ("onnx", "onnxruntime"), ("onnx", "onnxruntime-int8")], indirect=["fsq_dir"])
def test_behavior_runner_contract_on_every_cpu_backend(fsq_dir, backend):
    runner = create_behavior_runner(fsq_dir, backend)
    probs, code = runner.predict(imu_window())
    assert runner.class_names == ["still", "walk", "turn"] and runner.window_length == 100
    assert runner.sample_rate_hz == 50.0 and runner.backend_name == backend
    assert probs.shape == (3,) and probs.dtype == np.float32 and probs.sum() == pytest.approx(1, abs=1e-5)
    assert isinstance(code, int) and 0 <= code < 4800
    with pytest.raises(ValueError, match="needs 100"):
        runner.predict(imu_window(50))


@needs_torch
@pytest.mark.parametrize("fsq_dir", ["torch"], indirect=True)
def test_fp32_backends_agree_and_int8_stays_close(fsq_dir):
    windows = [imu_window(seed=i) for i in range(8)]
    outputs = {b: [create_behavior_runner(fsq_dir, b).predict(w) for w in windows]
               for b in ("torch", "onnxruntime", "onnxruntime-int8")}
    for (p_t, c_t), (p_o, c_o) in zip(outputs["torch"], outputs["onnxruntime"]):
        np.testing.assert_allclose(p_t, p_o, atol=1e-5)
        assert c_t == c_o
    int8_gap = max(np.abs(p_t - p_q).max() for (p_t, _), (p_q, _) in zip(outputs["torch"], outputs["onnxruntime-int8"]))
    assert int8_gap < 0.2


def test_behavior_runner_matches_the_model_computed_in_numpy(fsq_dir):
    from edge_inference.models.fsq.codes import levels_to_index

    runner = create_behavior_runner(fsq_dir, "onnxruntime")
    window = imu_window(seed=3)
    probs, code = runner.predict(window)
    want_probs, want_levels = tiny_fsq_reference(runner.model_input(window))
    np.testing.assert_allclose(probs, want_probs[0], atol=1e-5)
    assert code == levels_to_index(want_levels[0], runner.config.levels)


@pytest.mark.parametrize("backend", ["onnxruntime", "onnxruntime-int8"])
def test_policy_runner_contract(act_dir, backend):
    runner = create_policy_runner(act_dir, backend)
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)  # any camera size
    chunk = runner.predict(image, np.array([0.1, 0.2], dtype=np.float32))
    assert chunk.shape == (8, 2) and chunk.dtype == np.float32 and np.isfinite(chunk).all()
    assert (runner.chunk_size, runner.action_dim, runner.dt) == (8, 2, pytest.approx(1 / 30))
    assert runner.action_names == ["steering", "throttle"] and runner.backend_name == backend
    assert runner.model_hash
    with pytest.raises(ValueError, match="2 values"):
        runner.predict(image, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="not finite"):
        runner.predict(image, np.array([np.nan, 0], np.float32))


def test_policy_runner_matches_the_model_computed_in_numpy(act_dir):
    from edge_inference.core.preprocess import preprocess_image

    image = np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    state = np.array([0.3, -0.1], np.float32)
    chunk = create_policy_runner(act_dir, "onnxruntime").predict(image, state)
    want = tiny_act_reference(preprocess_image(image, 32, 24)[None], state[None], ACT_RUNTIME)
    np.testing.assert_allclose(chunk, want, atol=1e-4)


def test_registry_errors_are_clear(fsq_dir, act_dir, tmp_path):
    with pytest.raises(BackendError, match="unknown backend 'tensorrt'"):
        create_backend("tensorrt", fsq_dir)
    with pytest.raises(BackendError, match="does not exist"):
        create_backend("onnxruntime", tmp_path / "missing")
    with pytest.raises(BackendError, match="no model.hef"):
        create_backend("hailo", fsq_dir)
    with pytest.raises(ModelKindError, match="expected 'act'"):
        create_policy_runner(fsq_dir, "onnxruntime")
    with pytest.raises(ModelKindError, match="expected 'fsq_classifier'"):
        create_behavior_runner(act_dir, "onnxruntime")
    backend = create_backend("onnxruntime", fsq_dir)
    with pytest.raises(BackendError, match="shape"):
        backend.run({"imu": np.zeros((1, 9, 2, 50), np.float32)})


def test_onnxruntime_runners_do_not_import_torch(fsq_dir, act_dir):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from edge_inference.backends.runners import create_behavior_runner, create_policy_runner
        from edge_inference.backends import hailo  # must import without torch too
        b = create_behavior_runner({str(fsq_dir)!r}, "onnxruntime-int8")
        b.predict(np.tile([0, 0, 9.81, 0, 0, 0, 0, 0, 0], (100, 1)).astype(np.float32))
        p = create_policy_runner({str(act_dir)!r}, "onnxruntime")
        p.predict(np.zeros((24, 32, 3), np.uint8), np.zeros(2, np.float32))
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
