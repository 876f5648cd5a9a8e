"""`edge-inference` subcommands, grouped by what a user does.

Each command module exposes ``register(subparsers)`` and imports its heavy
dependencies (torch, onnx, rclpy) inside ``run``. Commands are thin: what they
compute lives in the library (core/, ros/, deploy/, evaluation/, ...), which is
what the tests import.
"""

FAMILIES: dict[str, list[str]] = {
    "run": ["up", "demo", "drive_sim", "record", "top"],
    "train": ["train_act", "train_fsq", "train_sim_policy", "gen_demos", "export_dataset"],
    "deploy": ["export", "quantize", "hailo_compile", "hailo_verify"],
    "evaluate": ["eval", "import_tub", "import_hapt"],
    "bench": ["bench", "bench_bridge", "bench_sim", "bench_monitor"],
    "board": ["calibrate"],
}

COMMAND_MODULES = [f"{family}.{name}" for family, names in FAMILIES.items() for name in names]
