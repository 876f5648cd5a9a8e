"""The hailo backend's call contract against a fake ``hailo_platform`` (tests only).

The fake mirrors HailoRT's scheduler API (VDevice.create_params, ROUND_ROBIN,
create_infer_model, set_format_type, configure, create_bindings, run(bindings, timeout))
and records every call. Its "HEF" is the split model's NPU ONNX, executed with ONNX
Runtime on the NHWC buffers it is given, so the test also proves the NCHW<->NHWC
handling and the host-side tail give the same answer as the whole ONNX model.
"""
from __future__ import annotations

import json
import shutil
import sys
import types

import numpy as np
import onnxruntime as ort
import pytest
from model_fixtures import imu_window
from onnx_models import tiny_fsq_model

from edge_inference.deploy.hailo import hailo_sidecar
from edge_inference.deploy.onnx_export import read_onnx_metadata, split_at_scope


class FakeHailo:
    """A stand-in for the ``hailo_platform`` module that checks how it is called."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.vdevices: list = []
        fake = self

        class HailoSchedulingAlgorithm:
            NONE, ROUND_ROBIN = "NONE", "ROUND_ROBIN"

        class FormatType:
            FLOAT32, UINT8 = "FLOAT32", "UINT8"

        class Params:
            scheduling_algorithm = "NONE"

        class Stream:
            def __init__(self, name, shape):
                self.name, self.shape, self.format_type = name, shape, "UINT8"

            def set_format_type(self, value):
                fake.calls.append(("set_format_type", self.name, value))
                self.format_type = value

        class Binding:
            def __init__(self):
                self.buffer = None

            def set_buffer(self, buffer):
                self.buffer = buffer

            def get_buffer(self):
                return self.buffer

        class Bindings:
            def __init__(self, model):
                self._in = {n: Binding() for n in model.input_names}
                self._out = {n: Binding() for n in model.output_names}

            def input(self, name=None):
                return self._in[name or next(iter(self._in))]

            def output(self, name=None):
                return self._out[name or next(iter(self._out))]

        class ConfiguredInferModel:
            def __init__(self, model):
                self.model = model

            def create_bindings(self):
                return Bindings(self.model)

            def run(self, bindings_list, timeout_ms):
                fake.calls.append(("run", len(bindings_list), timeout_ms))
                assert isinstance(timeout_ms, int) and timeout_ms > 0
                for bindings in bindings_list:
                    feeds = {}
                    for name, onnx_name in zip(self.model.input_names, self.model.session_inputs):
                        buf = bindings.input(name).buffer
                        stream = self.model.input(name)
                        assert buf is not None and buf.dtype == np.float32 and buf.flags.c_contiguous
                        assert tuple(buf.shape) == stream.shape, "input must be NHWC without batch"
                        feeds[onnx_name] = buf.transpose(2, 0, 1)[None]  # NHWC -> NCHW for the reference
                    results = self.model.session.run(None, feeds)
                    for name, value in zip(self.model.output_names, results):
                        out = bindings.output(name).buffer
                        assert out is not None and out.dtype == np.float32 and out.shape == self.model.output(name).shape
                        out[...] = value[0].transpose(1, 2, 0)  # NCHW -> NHWC

        class InferModel:
            def __init__(self, hef_path):
                self.session = ort.InferenceSession(hef_path, providers=["CPUExecutionProvider"])
                self.session_inputs = [i.name for i in self.session.get_inputs()]
                self.input_names = [f"net/input_layer{i + 1}" for i in range(len(self.session_inputs))]
                self.output_names = [f"net/conv{i + 1}" for i in range(len(self.session.get_outputs()))]
                nhwc = lambda s: (s[2], s[3], s[1])  # noqa: E731
                self._inputs = {n: Stream(n, nhwc(i.shape)) for n, i in zip(self.input_names, self.session.get_inputs())}
                self._outputs = {n: Stream(n, nhwc(o.shape)) for n, o in zip(self.output_names, self.session.get_outputs())}
                self.configured = False

            def set_batch_size(self, n):
                fake.calls.append(("set_batch_size", n))

            def input(self, name=None):
                return self._inputs[name or self.input_names[0]]

            def output(self, name=None):
                return self._outputs[name or self.output_names[0]]

            def configure(self):
                fake.calls.append(("configure",))
                self.configured = True
                return ConfiguredInferModel(self)

        class VDevice:
            def __init__(self, params=None):
                assert params is not None and params.scheduling_algorithm == HailoSchedulingAlgorithm.ROUND_ROBIN
                fake.vdevices.append(self)
                self.released = False

            @staticmethod
            def create_params():
                return Params()

            def create_infer_model(self, path):
                fake.calls.append(("create_infer_model", path))
                return InferModel(path)

            def release(self):
                self.released = True

        self.module = types.ModuleType("hailo_platform")
        self.module.VDevice = VDevice
        self.module.HailoSchedulingAlgorithm = HailoSchedulingAlgorithm
        self.module.FormatType = FormatType


@pytest.fixture
def fake_hailo(monkeypatch):
    fake = FakeHailo()
    monkeypatch.setitem(sys.modules, "hailo_platform", fake.module)
    return fake


@pytest.fixture
def compiled_fsq(tmp_path):
    """A model dir as `export --split` + `hailo-compile` leave it; the 'HEF' is the NPU ONNX
    (the conv encoder -> latent (1, 5, 1, 1); host.onnx: FSQ rounding + head)."""
    ckpt = tiny_fsq_model(tmp_path / "fsq")
    npu, _host = split_at_scope(ckpt / "model.onnx", ckpt, scope="encoder", npu_inputs=("imu",),
                                boundary_name="latent")
    shutil.copy(npu, ckpt / "model.hef")
    (ckpt / "model.hef.json").write_text(json.dumps(hailo_sidecar(read_onnx_metadata(npu), "host.onnx")))
    return ckpt


def test_hailo_runner_matches_onnxruntime_through_the_hailort_call_contract(fake_hailo, compiled_fsq):
    from edge_inference.backends.runners import create_behavior_runner

    hailo = create_behavior_runner(compiled_fsq, "hailo", timeout_ms=500)
    reference = create_behavior_runner(compiled_fsq, "onnxruntime")
    for seed in range(3):
        window = imu_window(seed=seed)
        probs, code = hailo.predict(window)
        want_probs, want_code = reference.predict(window)
        np.testing.assert_allclose(probs, want_probs, atol=1e-5)
        assert code == want_code
    names = [c[0] for c in fake_hailo.calls]
    # formats are set to FLOAT32 on every input and output before configure()
    formats = [c for c in fake_hailo.calls if c[0] == "set_format_type"]
    assert formats and all(c[2] == "FLOAT32" for c in formats)
    assert max(names.index(c) for c in ["set_format_type", "set_batch_size"]) < names.index("configure")
    assert ("run", 1, 500) in fake_hailo.calls
    hailo.close()


def test_hailo_models_share_one_round_robin_vdevice(fake_hailo, compiled_fsq):
    from edge_inference.backends import create_backend

    first = create_backend("hailo", compiled_fsq)
    second = create_backend("hailo", compiled_fsq)
    assert len(fake_hailo.vdevices) == 1 and first.vdevice is second.vdevice
    first.close()
    assert not fake_hailo.vdevices[0].released  # still used by the second model
    second.close()
    assert fake_hailo.vdevices[0].released


def test_hailo_backend_without_hailort_says_how_to_install(monkeypatch, compiled_fsq):
    from edge_inference.backends import BackendError, create_backend

    monkeypatch.setitem(sys.modules, "hailo_platform", None)  # import fails like on a dev machine
    with pytest.raises(BackendError, match="hailo-all"):
        create_backend("hailo", compiled_fsq)


def test_act_split_runs_backbone_on_hailo_and_transformer_on_the_host(fake_hailo, tmp_path):
    from model_fixtures import ACT_RUNTIME
    from onnx_models import tiny_act_model

    from edge_inference.backends.runners import create_policy_runner

    full = tiny_act_model(tmp_path / "model.onnx", ACT_RUNTIME)
    npu, _host = split_at_scope(full, tmp_path)
    shutil.copy(npu, tmp_path / "model.hef")
    (tmp_path / "model.hef.json").write_text(json.dumps(hailo_sidecar(read_onnx_metadata(npu), "host.onnx")))
    hailo = create_policy_runner(tmp_path, "hailo")
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    state = np.array([0.2, 0.4], np.float32)
    np.testing.assert_allclose(hailo.predict(image, state),
                               create_policy_runner(tmp_path, "onnxruntime").predict(image, state), atol=1e-5)
    assert hailo.chunk_size == 8 and hailo.backend_name == "hailo"
    hailo.close()


def test_hailo_compile_stops_clearly_without_the_dataflow_compiler(monkeypatch, compiled_fsq, capsys):
    from edge_inference.cli import main
    from edge_inference.deploy.hailo import producer_nodes

    monkeypatch.setitem(sys.modules, "hailo_sdk_client", None)
    np.savez(compiled_fsq / "calibration.npz", imu=np.zeros((2, 9, 2, 100), np.float32))
    assert main(["hailo-compile", "--model", str(compiled_fsq)]) == 3
    assert "error: Hailo Dataflow Compiler (hailo_sdk_client) is not installed" in capsys.readouterr().err
    # the DFC's end nodes are node names: the conv that produces the NPU output
    assert producer_nodes(compiled_fsq / "npu.onnx", ["latent"])[0].endswith("Conv")
