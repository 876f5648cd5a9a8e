"""Model paths in config files resolve against the package, from any working directory."""
import os

from edge_inference.core.resources import resolve_model_path, share_dir


def test_relative_model_path_resolves_against_share_dir(tmp_path):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        p = resolve_model_path("models/fsq_hapt")
        assert p == share_dir() / "models" / "fsq_hapt" and p.is_dir()
        (tmp_path / "mine.onnx").write_bytes(b"x")
        assert resolve_model_path("mine.onnx") == tmp_path.joinpath("mine.onnx").relative_to(tmp_path)
        assert resolve_model_path("no/such/model") == type(p)("no/such/model")
    finally:
        os.chdir(cwd)
