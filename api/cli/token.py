"""``jobledger token issue``: a bearer token for a worker or a script, without a password."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from api.cli.store import open_ledger
from api.settings import Settings, SettingsError
from api.tokens import Tokens
from domain.errors import JobLedgerError
from stores import StoreURLError

MAX_TTL_SECONDS = 365 * 24 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,9})([smhd]?)")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("token", help="issue bearer tokens")
    commands = parser.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    issue = commands.add_parser(
        "issue", help="print a token for a user (signed with the server's JWT secret)"
    )
    issue.add_argument("--email", required=True)
    issue.add_argument(
        "--ttl", type=duration, default=None,
        help="lifetime: seconds, or a number with s, m, h or d (default: JOBLEDGER_TOKEN_TTL)",
    )
    issue.set_defaults(handler=issue_token)


def duration(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``15m``, ``12h`` or ``30d`` (at most 365 days)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 15m, 12h or 30d")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not 1 <= seconds <= MAX_TTL_SECONDS:
        raise argparse.ArgumentTypeError("must be between 1 second and 365 days")
    return seconds


def issue_token(args: argparse.Namespace) -> int:
    """Prints a token for an enabled user; 1 when the user is unknown or disabled, 2 on settings."""
    try:
        settings = Settings.from_env()
    except (SettingsError, StoreURLError) as error:
        print(f"jobledger token issue: {error}", file=sys.stderr)
        return 2
    try:
        with open_ledger() as ledger:
            user = ledger.find_user(args.email)
    except JobLedgerError as error:
        print(f"jobledger token issue: {error}", file=sys.stderr)
        return 1
    if user.disabled:
        print(f"jobledger token issue: {user.email} is disabled", file=sys.stderr)
        return 1
    print(Tokens(settings.jwt_secret, settings.token_ttl_seconds).issue(user, args.ttl))
    return 0
