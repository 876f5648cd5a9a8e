"""Reading input files with errors that name the file; writing outputs beside the target, then renaming.

Outputs (models, reports, datasets) are written into a hidden staging folder next
to their final place and moved there only after the command has checked them, one
``os.replace`` per file (atomic on one file system). A failure before that leaves
every previous output byte-identical and removes the staging folder.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edge_inference.core.errors import EdgeInferenceError, yaml_problem


class InputFileError(EdgeInferenceError, ValueError):
    """An input file is missing, empty, damaged or not the kind of file expected."""


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{what} not found ({path})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(f"{what} is not valid JSON: {err} ({path})") from err


def read_yaml(path: str | Path, what: str = "YAML file") -> Any:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{what} not found ({path})")
    try:
        return yaml.safe_load(path.read_text())
    except UnicodeDecodeError as err:
        raise InputFileError(f"{what} is not text ({path})") from err
    except yaml.YAMLError as err:
        raise InputFileError(f"{what} is not valid YAML: {yaml_problem(err, path)}") from err


def load_npz(path: str | Path, required: tuple[str, ...] = (), what: str = "arrays file") -> dict[str, np.ndarray]:
    """All arrays of an .npz file; a missing/empty/damaged file or missing arrays is an InputFileError."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{what} not found ({path})")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise InputFileError(f"{what} is a single .npy array, expected an .npz archive ({path})")
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        if isinstance(err, InputFileError):
            raise
        raise InputFileError(f"{what} is not a readable .npz archive ({err}) ({path})") from err
    missing = sorted(set(required) - set(arrays))
    if missing:
        raise InputFileError(f"{what} lacks arrays {missing} (has {sorted(arrays)}) ({path})")
    empty = sorted(k for k in required if arrays[k].ndim == 0 or len(arrays[k]) == 0)
    if empty:
        raise InputFileError(f"{what} has no samples in {empty} ({path})")
    return arrays


class Staging:
    """A hidden staging folder; ``commit()`` moves what was written there into place.

        with Staging(out_dir) as stage:
            export(stage.path("model.onnx"))      # written to out_dir/.<name>.staging-XXXX/model.onnx
            check(stage.path("model.onnx"))
            stage.commit()                        # os.replace into out_dir/model.onnx

    Leaving the block without ``commit()`` (an exception) removes the staging folder:
    ``out_dir`` is not created, and the files already in it are untouched. Files of
    ``out_dir`` that the command does not write again stay as they are.
    """

    def __init__(self, target_dir: str | Path):
        self.target_dir = Path(target_dir)
        self.dir: Path | None = None
        self.committed: list[Path] = []

    def __enter__(self) -> "Staging":
        # Inside an existing output folder (same file system, no write access above it needed);
        # beside a new one, so that it appears only on commit.
        where = self.target_dir if self.target_dir.is_dir() else self.target_dir.resolve().parent
        where.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f".{self.target_dir.name}.staging-", dir=where))
        return self

    def path(self, name: str) -> Path:
        """Where to write the output that will become ``target_dir/name``."""
        assert self.dir is not None, "use Staging as a context manager"
        return self.dir / name

    def commit(self) -> list[Path]:
        """Move every staged file and folder (e.g. a bag) into ``target_dir``, replacing what is there."""
        assert self.dir is not None
        self.target_dir.mkdir(parents=True, exist_ok=True)
        for src in sorted(self.dir.iterdir()):  # (the staging folder itself is never among them)
            dst = self.target_dir / src.name
            if src.is_dir() and dst.is_dir():  # a folder cannot be renamed over a full one: swap
                old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=self.target_dir))
                os.replace(dst, old / dst.name)
                os.replace(src, dst)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(src, dst)
            self.committed.append(dst)
        return self.committed

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def mark_partial(path: str | Path) -> Path | None:
    """Rename an output a failed command could not finish to ``<name>.partial`` (kept: it may hold
    real data, e.g. a recording up to the failure); returns the new path."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return None
    target = path.with_name(path.name + ".partial")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.partial{n}")
    os.replace(path, target)
    return target


def remove_partial(path: str | Path) -> None:
    """Remove an output a failed command left half-written (a file or a folder)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
