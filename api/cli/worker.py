"""``jobledger worker``: runs a module's handlers for jobs claimed from a jobledger API.

The token comes from ``--token-file`` (read again after a 401, so a renewed file is picked up) or
from ``JOBLEDGER_TOKEN``; never from an argument, which any user of the machine can read in the
process list.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from worker import Worker
from worker.runner import EXIT_REFUSED

PROG = "jobledger worker"
TOKEN_VARIABLE = "JOBLEDGER_TOKEN"


class WorkerSetupError(Exception):
    """A worker that cannot start: a bad --handlers, no token."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run job handlers against a jobledger API",
        description="Claims jobs of the types MODULE:ATTR has handlers for, runs them and "
        "records their progress, errors and outcome. SIGTERM or SIGINT stops claiming and gives "
        "running jobs --grace-seconds to finish. Exit status: 0 stopped with every job answered; "
        "1 running jobs abandoned after the grace period (their leases lapse and the jobs are "
        "rescued); 2 bad arguments, no token, or the server refused the worker.",
    )
    parser.add_argument(
        "--url", required=True, help="the API's base URL, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"a file holding the bearer token (default: the {TOKEN_VARIABLE} variable)",
    )
    parser.add_argument(
        "--handlers",
        required=True,
        metavar="MODULE:ATTR",
        help="a dict {job type: callable} in an importable module (the current directory is "
        "importable), e.g. examples.handlers:handlers",
    )
    parser.add_argument(
        "--concurrency", type=_positive_int, default=10, help="jobs run at once (default: 10)"
    )
    parser.add_argument(
        "--lease-seconds", type=float, default=30.0, help="each job's lease, 5-3600 (default: 30)"
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=30.0,
        help="how long running jobs may finish after a stop (default: 30)",
    )
    parser.add_argument(
        "--types",
        nargs="+",
        metavar="TYPE",
        help="claim only these job types (default: every type it has a handler for)",
    )
    parser.add_argument("--name", help="the worker's name in each attempt (default: host:pid)")
    parser.set_defaults(handler=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    """Runs the worker until SIGTERM or SIGINT; returns its exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        handlers = load_handlers(args.handlers)
        token = token_source(args.token_file, os.environ)
        worker = Worker(
            args.url,
            token,
            handlers,
            concurrency=args.concurrency,
            lease_seconds=args.lease_seconds,
            grace_seconds=args.grace_seconds,
            name=args.name,
            types=args.types,
        )
    except (WorkerSetupError, ValueError, TypeError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    return worker.run()


def load_handlers(spec: str) -> Mapping[str, Callable[..., Any]]:
    """``MODULE:ATTR`` -> the dict it names, importing from the current directory too."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise WorkerSetupError(f"--handlers must be MODULE:ATTR, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise WorkerSetupError(f"cannot import {module_name!r}: {error}") from None
    handlers = getattr(module, attribute, None)
    if not isinstance(handlers, Mapping):
        raise WorkerSetupError(f"{spec} must be a dict {{job type: callable}}, got {handlers!r}")
    return handlers


def token_source(token_file: Path | None, environ: Mapping[str, str]) -> Callable[[], str]:
    """Reads the token now (so a missing one stops the worker at once) and again on each call."""
    if token_file is not None:

        def read() -> str:
            try:
                token = token_file.read_text().strip()
            except OSError as error:
                raise WorkerSetupError(f"cannot read --token-file: {error}") from None
            if not token:
                raise WorkerSetupError(f"--token-file {token_file} is empty")
            return token
    else:

        def read() -> str:
            token = environ.get(TOKEN_VARIABLE, "").strip()
            if not token:
                raise WorkerSetupError(f"give --token-file, or set {TOKEN_VARIABLE}")
            return token

    read()
    return read


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
