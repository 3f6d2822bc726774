"""The ``jobledger`` command line: a thin shell over the ledger and the read model.

Each command group lives in its own module with a ``register(subparsers)`` function that adds its
sub-commands; a sub-command's handler takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from api.cli.store import WHERE_THE_STORE_IS

COMMAND_MODULES: tuple[str, ...] = (
    "serve", "users", "token", "jobs", "projections", "history", "worker",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobledger",
        description="An event-sourced job ledger. " + WHERE_THE_STORE_IS
        + " Only serve and users create create a store; the other commands refuse when there is"
        " none.",
        epilog="Exit status, for every command: 0 done; 1 not found, or a check found differences;"
        " 2 bad input, no store, or the store failed.",
    )  # fmt: skip
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
