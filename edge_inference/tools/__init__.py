"""`edge-inference` subcommands: one module each, exposing ``register(subparsers)``.

Modules import heavy dependencies (torch, onnx, rclpy) inside their ``run``.
"""

TOOL_MODULES = [
    "up",
    "demo",
    "train_fsq",
    "train_act",
    "quantize",
    "export",
    "hailo_compile",
    "hailo_verify",
    "bench",
    "import_tub",
    "import_hapt",
    "eval",
    "record",
    "gen_demos",
    "drive_sim",
    "bench_sim",
    "train_sim_policy",
    "top",
    "bench_monitor",
    "calibrate",
    "bench_bridge",
]
