"""``jobledger serve``: the HTTP API and the projection runner, under uvicorn."""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

import uvicorn
from eventsourcing.persistence import PersistenceError
from uvicorn.config import LOGGING_CONFIG

from api.cli.store import open_ledger
from api.settings import Settings, SettingsError
from domain.errors import JobLedgerError
from stores import StoreURLError

GRACEFUL_SHUTDOWN_SECONDS = 30

FIRST_ADMIN_HINT = """No user yet. Create the first admin, once:
  curl -X POST {url}/api/v1/auth/setup -H 'Content-Type: application/json' \\
       -d '{{"email": "you@example.com", "password": "a long password"}}'
(or: jobledger users create --email you@example.com --role admin)"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Serves the HTTP API and runs the projection runner. SIGTERM finishes the "
        "requests in flight, then stops.",
    )
    parser.add_argument("--host", help="interface to listen on (default: JOBLEDGER_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default: JOBLEDGER_PORT)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (PostgreSQL or SQLite stores)"
    )
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Runs the server until it is stopped; 2 when the settings are wrong."""
    try:
        settings = Settings.from_env()
    except (SettingsError, StoreURLError) as error:
        print(f"jobledger serve: {error}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if not 1 <= port <= 65535 or args.workers < 1:
        print("jobledger serve: --port must be 1-65535 and --workers at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and settings.store.kind == "memory":
        print("jobledger serve: memory:// lives in one process; use --workers 1", file=sys.stderr)
        return 2
    url = f"http://{host}:{port}"
    print(f"jobledger: serving {url} (API docs: {url}/docs) on {settings.store.describe()}")
    if not _has_users():
        print(FIRST_ADMIN_HINT.format(url=url))
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_config=_log_config(),
        server_header=False,
    )
    return 0


def _has_users() -> bool:
    """Whether the store has a user yet (True when it cannot tell: the server will say why)."""
    try:
        with open_ledger(create=True) as ledger:
            return ledger.list_users(limit=1, offset=0)[1] > 0
    except (JobLedgerError, PersistenceError, OSError):
        return True


def _log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("api", "domain", "projections"):
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
