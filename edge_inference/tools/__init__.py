"""`edge-inference` subcommands: one module each, exposing ``register(subparsers)``.

Modules import heavy dependencies (torch, onnx, rclpy) inside their ``run``.
"""

TOOL_MODULES = [
    "up",
    "demo",
    "train_fsq",
    "quantize",
    "import_tub",
    "eval",
]
