"""``jobledger token issue``: a bearer token for a worker or a script, without a password."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from api.cli.store import WHERE_THE_STORE_IS, NoStoreError, open_ledger
from api.settings import (
    MAX_TOKEN_TTL_SECONDS,
    MIN_TOKEN_TTL_SECONDS,
    Settings,
    SettingsError,
)
from api.tokens import LEEWAY_SECONDS, Tokens
from domain.errors import JobLedgerError, UserNotFoundError
from stores import StoreURLError

PROG = "jobledger token issue"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,9})([smhd]?)")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("token", help="issue bearer tokens")
    commands = parser.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    issue = commands.add_parser(
        "issue", help="print a token for a user (signed with the server's JWT secret)",
        description="Prints a bearer token for an enabled user. Tokens are accepted up to "
        f"{LEEWAY_SECONDS} s after they expire (clock skew between hosts). " + WHERE_THE_STORE_IS,
    )  # fmt: skip
    issue.add_argument("--email", required=True, help="the user's email")
    issue.add_argument(
        "--ttl", type=duration, default=None,
        help=f"lifetime, {MIN_TOKEN_TTL_SECONDS} s to {MAX_TOKEN_TTL_SECONDS // 86400} days: "
        "seconds, or a number with s, m, h or d (default: JOBLEDGER_TOKEN_TTL)",
    )  # fmt: skip
    issue.set_defaults(handler=issue_token)


def duration(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``15m``, ``12h`` or ``30d``, within the range the server
    accepts for JOBLEDGER_TOKEN_TTL."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 15m, 12h or 30d")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not MIN_TOKEN_TTL_SECONDS <= seconds <= MAX_TOKEN_TTL_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_TOKEN_TTL_SECONDS} s and {MAX_TOKEN_TTL_SECONDS // 86400} days"
        )
    return seconds


def issue_token(args: argparse.Namespace) -> int:
    """Prints a token for an enabled user; 1 when the user is unknown or disabled, 2 when the
    settings or the store are missing or bad. The store is checked first, so that no JWT secret
    is generated for a store that does not exist."""
    try:
        with open_ledger() as ledger:
            user = ledger.find_user(args.email)
        settings = Settings.from_env()
    except UserNotFoundError:
        print(f"{PROG}: no user with email {args.email!r}", file=sys.stderr)
        return 1
    except (SettingsError, StoreURLError, NoStoreError, JobLedgerError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    if user.disabled:
        print(f"{PROG}: {user.email} is disabled", file=sys.stderr)
        return 1
    print(Tokens(settings.jwt_secret, settings.token_ttl_seconds).issue(user, args.ttl))
    return 0
