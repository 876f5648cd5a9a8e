"""Where the package's launch/config files are: installed share dir or source tree."""
from __future__ import annotations

from pathlib import Path

PACKAGE = "edge_inference"


def share_dir() -> Path:
    """Source checkout first (dev/CI), else the ament index (colcon install on the robot)."""
    src = Path(__file__).resolve().parents[2]
    if (src / "config" / "rover.yaml").is_file():
        return src
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory(PACKAGE))


def config_path(*parts: str) -> Path:
    return share_dir().joinpath("config", *parts)


def resolve_model_path(path: str | Path) -> Path:
    """A model path as given, or relative to the package share dir (``models/...`` in config files).

    Config files name shipped models relative to the package, so the same YAML works
    from a source checkout, a colcon install, and any working directory.
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    shared = share_dir() / p
    return shared if shared.exists() else p
