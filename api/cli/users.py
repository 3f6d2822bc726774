"""``jobledger users``: register users, enable or disable them, and unlock their logins, without
the HTTP API.

Passwords are read from a prompt (typed twice) or, when stdin is not a terminal, from its first
line; never from an argument, which other users could read in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from api.cli.store import WHERE_THE_STORE_IS, NoStoreError, open_ledger, open_store_ledger
from api.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Passwords
from domain.errors import JobLedgerError, UserNotFoundError
from domain.ledger import JobLedger
from domain.user import Role, User
from projections import open_view
from stores import Store, StoreURLError

#: How long ``disable`` and ``enable`` wait for a running server's view to show the change.
SHOWN_TIMEOUT_SECONDS = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("users", help="manage users", description=WHERE_THE_STORE_IS)
    commands = parser.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    create = commands.add_parser(
        "create", help="register a user (password from a prompt or stdin)",
        description="Registers a user; creates the store when there is none yet. "
        + WHERE_THE_STORE_IS,
    )  # fmt: skip
    create.add_argument("--email", required=True, help="the user's email (their login name)")
    create.add_argument(
        "--role", required=True, choices=[r.value for r in Role],
        help="admin: everything; member: their own jobs; worker: runs every job",
    )  # fmt: skip
    create.set_defaults(handler=create_user)
    for name, verb in (("disable", "stop a user's logins and tokens"), ("enable", "let back in")):
        command = commands.add_parser(name, help=verb, description=WHERE_THE_STORE_IS)
        command.add_argument("--email", required=True, help="the user's email")
        command.set_defaults(handler=change_user, change=name)
    unlock = commands.add_parser(
        "unlock", help="forget a user's failed logins, so every address may log in again",
        description="Records that the user's failed logins are cleared (the throttle of each "
        "API process's memory, per client address across accounts, is not). " + WHERE_THE_STORE_IS,
    )  # fmt: skip
    unlock.add_argument("--email", required=True, help="the user's email")
    unlock.set_defaults(handler=unlock_user)


def create_user(args: argparse.Namespace) -> int:
    """Registers a user; 0 when done, 2 when refused (bad input, the email is taken, or the
    store failed): nothing here is "not found"."""
    password = read_password()
    if password is None:
        return 2
    try:
        with open_ledger(create=True) as ledger:
            user = ledger.register_user(
                email=args.email, role=args.role, password_hash=Passwords().hash(password),
                actor=cli_actor(),
            )
    except (StoreURLError, JobLedgerError) as error:
        print(f"jobledger users create: {error}", file=sys.stderr)
        return 2
    print(f"Registered {user.email} ({user.role.value}), id {user.id}")
    return 0


def change_user(args: argparse.Namespace) -> int:
    """Disables or enables a user; 0 when done, 1 when there is no such user, 2 when the store
    is missing or failed."""

    prog = f"jobledger users {args.change}"
    try:
        store, ledger = open_store_ledger()
    except (StoreURLError, NoStoreError, JobLedgerError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2

    def change(ledger: JobLedger, user: User) -> str:
        if args.change == "disable":
            user = ledger.disable_user(user.id, actor=cli_actor())
        else:
            user = ledger.enable_user(user.id, actor=cli_actor())
        if not _shown_by_servers(store, ledger):
            print(f"{prog}: the running server's view did not show the change within "
                  f"{SHOWN_TIMEOUT_SECONDS:g} s; it is recorded and takes effect once the view "
                  "catches up", file=sys.stderr)
        return f"{user.email} is now {'disabled' if user.disabled else 'enabled'}"

    return _on_user(prog, args.email, change, ledger)


def _shown_by_servers(store: Store, ledger: JobLedger) -> bool:
    """Waits until a running server's view shows the log's head (False when that takes longer
    than ``SHOWN_TIMEOUT_SECONDS``): a server answers from its cached users only while they are
    as new as its view, so the change then holds in every server."""
    with open_view(store) as view:
        if view.runner_holder() is None:
            return True
        return view.wait_for(ledger.head(), SHOWN_TIMEOUT_SECONDS)


def unlock_user(args: argparse.Namespace) -> int:
    """Clears a user's failed logins; 0 when done, 1 when there is no such user, 2 when the
    input is bad or the store is missing or failed."""

    def unlock(ledger: JobLedger, user: User) -> str:
        cleared = len(user.failed_logins)
        ledger.unlock_logins(user.id, actor=cli_actor())
        return f"{user.email} may log in again ({cleared} failed logins cleared)"

    return _on_user("jobledger users unlock", args.email, unlock)


def _on_user(
    prog: str, email: str, action: Callable[[JobLedger, User], str],
    opened: JobLedger | None = None,
) -> int:
    """Runs ``action`` on the user with ``email`` (in ``opened``, else the configured store's
    ledger) and prints what it says; the exit status."""
    try:
        with opened or open_ledger() as ledger:
            done = action(ledger, ledger.find_user(email))
    except UserNotFoundError:
        print(f"{prog}: no user with email {email!r}", file=sys.stderr)
        return 1
    except (StoreURLError, NoStoreError, JobLedgerError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    print(done)
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
