"""core/files.py: outputs staged beside the target and moved only when complete; named input errors."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from edge_inference.core.errors import describe, is_expected
from edge_inference.core.files import InputFileError, Staging, load_npz, mark_partial, read_yaml, write_text_atomic


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_failure_leaves_the_previous_outputs_byte_identical(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"deployed model")
    before = digest(out / "model.onnx")
    with pytest.raises(RuntimeError, match="parity"):
        with Staging(out) as stage:
            stage.path("model.onnx").write_bytes(b"half-checked new model")
            raise RuntimeError("parity check failed")
    assert digest(out / "model.onnx") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left


def test_commit_replaces_files_and_folders_and_keeps_the_rest(tmp_path):
    out = tmp_path / "demos"
    (out / "bag").mkdir(parents=True)
    (out / "bag" / "old.mcap").write_text("old")
    (out / "notes.txt").write_text("mine")
    with Staging(out) as stage:
        stage.path("bag").mkdir()
        stage.path("bag").joinpath("new.mcap").write_text("new")
        stage.path("demos.npz").write_text("arrays")
        stage.commit()
    assert sorted(p.name for p in (out / "bag").iterdir()) == ["new.mcap"]  # the bag folder is replaced whole
    assert (out / "notes.txt").read_text() == "mine" and (out / "demos.npz").read_text() == "arrays"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos"] and sorted(
        p.name for p in out.iterdir()) == ["bag", "demos.npz", "notes.txt"]


def test_a_new_output_folder_appears_only_on_commit(tmp_path):
    with pytest.raises(ValueError):
        with Staging(tmp_path / "fresh") as stage:
            stage.path("x").write_text("x")
            raise ValueError("boom")
    assert not (tmp_path / "fresh").exists() and list(tmp_path.iterdir()) == []


def test_write_text_atomic_and_mark_partial(tmp_path):
    target = tmp_path / "a" / "report.json"
    write_text_atomic(target, "{}")
    assert target.read_text() == "{}" and [p.name for p in target.parent.iterdir()] == ["report.json"]
    bag = tmp_path / "bag"
    bag.mkdir()
    assert mark_partial(bag) == tmp_path / "bag.partial" and not bag.exists()
    assert mark_partial(tmp_path / "absent") is None


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 20, b"text, not an archive\n"])
def test_damaged_npz_is_an_input_error_naming_the_file(tmp_path, content):
    path = tmp_path / "samples.npz"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match="samples.npz"):
        load_npz(path)


def test_npz_missing_or_empty_arrays(tmp_path):
    np.savez(tmp_path / "a.npz", image=np.zeros((0, 3)), state=np.zeros((4, 2)))
    with pytest.raises(InputFileError, match=r"lacks arrays \['labels'\]"):
        load_npz(tmp_path / "a.npz", required=("image", "labels"))
    with pytest.raises(InputFileError, match=r"no samples in \['image'\]"):
        load_npz(tmp_path / "a.npz", required=("image", "state"))


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a: 1\nb: [2, 3\n")
    with pytest.raises(InputFileError, match=r"params.yaml.*line 3") as info:
        read_yaml(path)
    assert "\n" not in str(info.value)


def test_library_errors_are_expected_and_described_on_one_line(tmp_path):
    import json

    import yaml

    err = pytest.raises(yaml.YAMLError, yaml.safe_load, "a: [1\n").value
    assert is_expected(err) and describe(err).startswith("invalid YAML:") and "\n" not in describe(err)
    err = pytest.raises(json.JSONDecodeError, json.loads, "{x").value
    assert is_expected(err) and "line 1, column 2" in describe(err)
    err = pytest.raises(FileNotFoundError, open, tmp_path / "nope").value
    assert describe(err) == f"No such file or directory ({tmp_path / 'nope'})"
    assert not is_expected(ZeroDivisionError()) and not is_expected(KeyError("x"))


def test_a_missing_optional_library_is_a_tool_missing_error_not_a_bug():
    from edge_inference.core.errors import ToolMissing, is_expected, missing_library

    err = missing_library(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert isinstance(err, ToolMissing) and err.exit_code == 3 and is_expected(err)
    assert "torch is not installed" in str(err) and "requirements/dev.txt" in str(err)
    assert missing_library(ModuleNotFoundError("No module named 'edge_inference.nope'", name="edge_inference.nope")) \
        is None  # our own missing module is a bug
    assert missing_library(ValueError("x")) is None
