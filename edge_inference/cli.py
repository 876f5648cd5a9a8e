"""The `edge-inference` command line: subcommands from ``edge_inference.commands``."""
from __future__ import annotations

import argparse
import importlib
import sys

from edge_inference.commands import COMMAND_MODULES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-inference",
                                     description="Run, train, export, benchmark and evaluate the rover's models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"edge_inference.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
