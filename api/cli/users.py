"""``jobledger users``: register users and enable or disable them, without the HTTP API.

Passwords are read from a prompt (typed twice) or, when stdin is not a terminal, from its first
line; never from an argument, which other users could read in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from api.cli.store import open_ledger
from api.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Passwords
from domain.errors import JobLedgerError
from domain.user import Role
from stores import StoreURLError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("users", help="manage users")
    commands = parser.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    create = commands.add_parser(
        "create", help="register a user (password from a prompt or stdin)"
    )
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.set_defaults(handler=create_user)
    for name, verb in (("disable", "stop a user's logins and tokens"), ("enable", "let back in")):
        command = commands.add_parser(name, help=verb)
        command.add_argument("--email", required=True)
        command.set_defaults(handler=change_user, change=name)


def create_user(args: argparse.Namespace) -> int:
    """Registers a user; 0 when done, 1 when refused (the email is taken), 2 on bad input."""
    password = read_password()
    if password is None:
        return 2
    try:
        with open_ledger() as ledger:
            user = ledger.register_user(
                email=args.email, role=args.role, password_hash=Passwords().hash(password),
                actor=cli_actor(),
            )
    except StoreURLError as error:
        print(f"jobledger users create: {error}", file=sys.stderr)
        return 2
    except JobLedgerError as error:
        print(f"jobledger users create: {error}", file=sys.stderr)
        return 1
    print(f"Registered {user.email} ({user.role.value}), id {user.id}")
    return 0


def change_user(args: argparse.Namespace) -> int:
    """Disables or enables a user; 0 when done, 1 when refused, 2 on a bad store URL."""
    try:
        with open_ledger() as ledger:
            user = ledger.find_user(args.email)
            if args.change == "disable":
                user = ledger.disable_user(user.id, actor=cli_actor())
            else:
                user = ledger.enable_user(user.id, actor=cli_actor())
    except StoreURLError as error:
        print(f"jobledger users {args.change}: {error}", file=sys.stderr)
        return 2
    except JobLedgerError as error:
        print(f"jobledger users {args.change}: {error}", file=sys.stderr)
        return 1
    print(f"{user.email} is now {'disabled' if user.disabled else 'enabled'}")
    return 0


def read_password() -> str | None:
    """The new password, from a prompt (twice) or stdin's first line; None when unusable."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            print("The passwords differ.", file=sys.stderr)
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        print(
            f"The password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
            file=sys.stderr,
        )
        return None
    return password


def cli_actor() -> str:
    """Who acts from the command line: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"[:200]
    except (KeyError, OSError):
        return "cli"
