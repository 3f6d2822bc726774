"""The ``jobledger`` command line: a thin shell over the ledger and the read model.

Each command group lives in its own module with a ``register(subparsers)`` function that adds its
sub-commands; a sub-command's handler takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = ("serve", "users", "token", "projections", "history")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobledger",
        description="An event-sourced job ledger. The store is chosen by JOBLEDGER_DATABASE_URL.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command and returns its exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
