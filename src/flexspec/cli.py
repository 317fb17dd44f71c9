"""The ``flexspec`` command: a thin layer over the Python API.

Each package that offers a sub-command has a module ``_cli.py`` with two functions:
``register(subparsers)`` adds its parser(s) and sets ``func`` (called with the parsed
namespace, returns an exit code or None).  Heavy imports (torch, amaranth) happen inside
those functions, never at registration, so ``flexspec --help`` stays fast.

Errors of the FlexSpecError family become one line on stderr and their exit code
(2 for usage errors, 1 for runtime failures); argparse's own usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import FlexSpecError

#: Modules that register sub-commands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "flexspec.schedule._cli",
    "flexspec.accel._cli",
    "flexspec.dataflow._cli",
    "flexspec.rtl._cli",
    "flexspec.spectral._cli",
    "flexspec.report._cli",
    "flexspec.explore._cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flexspec",
        description="Compile a CNN into a low-latency spectral sparse FPGA accelerator and prove it by simulation.",
    )
    parser.add_argument("--version", action="version", version=f"flexspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except FlexSpecError as exc:
        print(f"flexspec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("flexspec: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
