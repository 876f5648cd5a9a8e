"""The `edge-inference` command line: subcommands from ``edge_inference.commands``, one error boundary.

Exit status: 0 done; 1 the command ran but its check failed (parity, accuracy gate,
laps not completed: a ``FAIL`` line says which) or an unexpected internal error (a bug:
one ``error:`` line, ``--debug`` or ``EDGE_INFERENCE_DEBUG=1`` for the traceback);
2 bad options or input (missing, empty or damaged file, wrong kind of model or data):
one ``error: <what> (<where>)`` line on stderr; 3 a required tool/SDK is not installed
here; 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from edge_inference.commands import COMMAND_MODULES
from edge_inference.core.errors import describe, is_expected, missing_library, one_line

DEBUG_ENV = "EDGE_INFERENCE_DEBUG"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its usage errors ending in one ``error: ...`` line (exit 2), like every other failure."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {one_line(message)} ({self.prog}; see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="edge-inference",
                            description="Run, train, export, benchmark and evaluate the rover's models.",
                            epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of a failure (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"edge_inference.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one error boundary: every command's failures end here
        if debug:
            traceback.print_exc()
        exc = missing_library(exc) or exc
        if is_expected(exc):
            print(f"error: {describe(exc)}", file=sys.stderr)
            return int(getattr(exc, "exit_code", 2))
        print(f"error: internal error: {one_line(f'{type(exc).__name__}: {exc}', 300)} "
              f"(a bug; run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
