"""Users and the directory of users: aggregates in the same log as the jobs.

A user's id is derived from the normalised email (``uuid5``), so an email can be registered only
once without a second table. The domain keeps only the password *hash*; hashing is the entry
points' business. Failed logins are events on the user, with the client address, so the
throttle holds across processes (the store's optimistic concurrency decides between them) and the
history shows who was locked out, from where, and when.

The login throttle, within any LOGIN_WINDOW (15 minutes):

- MAX_FAILED_LOGINS (5) failures from one address refuse that address for that account for the
  rest of the window; other addresses are not affected.
- Across all addresses, each failure beyond ACCOUNT_DELAY_AFTER (10) makes the account wait
  ``2 ** (failures - 10)`` seconds, at most MAX_ACCOUNT_DELAY (60 s), after the newest failure;
  MAX_ACCOUNT_FAILED_LOGINS (50) failures refuse the account for the rest of the window.
- ``unlock_logins`` (an operator's ``jobledger users unlock``) clears every failure.

A refused attempt records nothing, so an account holds at most MAX_ACCOUNT_FAILED_LOGINS
failures per window, and the user keeps only the newest of them.

The ``UserDirectory`` is one aggregate with a fixed id: its creation is the setup of the first
user (a second setup conflicts on that id), and it lists every user's id in registration order.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInputError, LoginThrottledError
from domain.job import checked_actor

USER_NAMESPACE = UUID("3d7c1f0e-8a2b-4c5d-9e6f-1a2b3c4d5e6f")
DIRECTORY_ID = uuid5(USER_NAMESPACE, "jobledger:user-directory")
MAX_EMAIL_CHARS = 254
MAX_PASSWORD_HASH_CHARS = 1_000
#: Failures from one address that refuse it for the account for the rest of LOGIN_WINDOW.
MAX_FAILED_LOGINS = 5
LOGIN_WINDOW = timedelta(minutes=15)
#: Failures from all addresses that refuse the account for the rest of LOGIN_WINDOW.
MAX_ACCOUNT_FAILED_LOGINS = 50
#: Failures from all addresses after which each further one adds a growing delay.
ACCOUNT_DELAY_AFTER = 10
#: The longest delay one failure imposes on the account.
MAX_ACCOUNT_DELAY = timedelta(seconds=60)
#: The address of failures stored before addresses were recorded, or of a client without one.
UNKNOWN_ADDRESS = "unknown"
MAX_ADDRESS_CHARS = 100
ANONYMOUS = "anonymous"


class Role(StrEnum):
    """What a user may do."""

    #: Everything, including managing users.
    ADMIN = "admin"
    #: Creates jobs; sees and cancels only its own.
    MEMBER = "member"
    #: Reads every job and drives their lifecycle.
    WORKER = "worker"


def normalise_email(email: str) -> str:
    """Returns the canonical form of an email (NFKC, trimmed, lower case), or raises."""
    if not isinstance(email, str):
        raise InvalidInputError("email", "must be a string")
    canonical = unicodedata.normalize("NFKC", email).strip().lower()
    local, at, domain = canonical.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or len(canonical) > MAX_EMAIL_CHARS
        or any(c.isspace() or not c.isprintable() for c in canonical)
    ):
        raise InvalidInputError("email", f"must be an email address of at most {MAX_EMAIL_CHARS} "
                                "characters, like ada@example.com")
    return canonical


class FailedLogin(NamedTuple):
    """When a login failed, and from which client address."""

    at: datetime
    address: str


def user_id_for(email: str) -> UUID:
    """Returns the id of the user with this email (registered or not)."""
    return uuid5(USER_NAMESPACE, normalise_email(email))


class User(Aggregate):
    """Someone who may call the API, with one role."""

    TOPIC = "jobledger:User"

    class Event(Aggregate.Event):
        TOPIC = "jobledger:User.Event"
        actor: str

    class Registered(Event, Aggregate.Created):
        TOPIC = "jobledger:User.Registered"
        email: str
        role: str
        password_hash: str

        def apply(self, user: User) -> None:
            user.email = self.email
            user.role = Role(self.role)
            user.password_hash = self.password_hash
            user.disabled = False
            user.failed_logins = []

    class RoleChanged(Event):
        TOPIC = "jobledger:User.RoleChanged"
        role: str

        def apply(self, user: User) -> None:
            user.role = Role(self.role)

    class PasswordChanged(Event):
        TOPIC = "jobledger:User.PasswordChanged"
        password_hash: str

        def apply(self, user: User) -> None:
            user.password_hash = self.password_hash

    class Disabled(Event):
        TOPIC = "jobledger:User.Disabled"

        def apply(self, user: User) -> None:
            user.disabled = True

    class Enabled(Event):
        TOPIC = "jobledger:User.Enabled"

        def apply(self, user: User) -> None:
            user.disabled = False

    class LoginFailed(Event):
        TOPIC = "jobledger:User.LoginFailed"
        #: Version 2 added the client address.
        class_version = 2
        address: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["address"] = UNKNOWN_ADDRESS

        def apply(self, user: User) -> None:
            since = self.timestamp - LOGIN_WINDOW
            recent = [f for f in user.failed_logins if f.at > since]
            failure = FailedLogin(self.timestamp, self.address)
            user.failed_logins = [*recent, failure][-MAX_ACCOUNT_FAILED_LOGINS:]

    class LoginsUnlocked(Event):
        TOPIC = "jobledger:User.LoginsUnlocked"

        def apply(self, user: User) -> None:
            user.failed_logins = []

    def __init__(self) -> None:
        """The state is assigned by ``Registered.apply``."""

    email: str
    role: Role
    password_hash: str
    disabled: bool
    #: The failed logins of the newest window, oldest first (at most MAX_ACCOUNT_FAILED_LOGINS).
    failed_logins: list[FailedLogin]

    @classmethod
    def register(cls, *, email: str, role: Role | str, password_hash: str, actor: str) -> User:
        """Registers a user; the id is derived from the email."""
        canonical = normalise_email(email)
        return cls._create(
            cls.Registered,
            id=uuid5(USER_NAMESPACE, canonical),
            actor=checked_actor(actor),
            email=canonical,
            role=_role(role).value,
            password_hash=_password_hash(password_hash),
        )

    def change_role(self, role: Role | str, *, actor: str) -> None:
        """Gives the user another role (nothing is recorded when it is the same)."""
        role = _role(role)
        if role is not self.role:
            self.trigger_event(self.RoleChanged, actor=checked_actor(actor), role=role.value)

    def change_password(self, password_hash: str, *, actor: str) -> None:
        """Replaces the password hash (a new password, or the same one rehashed)."""
        self.trigger_event(
            self.PasswordChanged,
            actor=checked_actor(actor),
            password_hash=_password_hash(password_hash),
        )

    def disable(self, *, actor: str) -> None:
        """Stops the user from logging in and refuses the user's tokens."""
        if not self.disabled:
            self.trigger_event(self.Disabled, actor=checked_actor(actor))

    def enable(self, *, actor: str) -> None:
        """Lets a disabled user back in."""
        if self.disabled:
            self.trigger_event(self.Enabled, actor=checked_actor(actor))

    def fail_login(self, address: str = UNKNOWN_ADDRESS) -> None:
        """Records a failed login from ``address``, unless it is refused already (then raises)."""
        address = _address(address)
        self.check_login_allowed(address)
        self.trigger_event(self.LoginFailed, actor=ANONYMOUS, address=address)

    def unlock_logins(self, *, actor: str) -> None:
        """Forgets every failed login (nothing is recorded when there are none)."""
        if self.failed_logins:
            self.trigger_event(self.LoginsUnlocked, actor=checked_actor(actor))

    def check_login_allowed(
        self, address: str = UNKNOWN_ADDRESS, now: datetime | None = None
    ) -> None:
        """Raises LoginThrottledError while logins from ``address`` are refused."""
        now = now or datetime.now(UTC)
        until = self.login_locked_until(now, address)
        if until is not None:
            raise LoginThrottledError(self.id, math.ceil((until - now).total_seconds()))

    def login_locked_until(
        self, now: datetime, address: str = UNKNOWN_ADDRESS
    ) -> datetime | None:
        """Until when logins from ``address`` are refused (None when they are allowed at ``now``).

        The latest of: MAX_FAILED_LOGINS failures from that address lock it for the rest of the
        window; MAX_ACCOUNT_FAILED_LOGINS from anywhere lock the account for the rest of it; and
        beyond ACCOUNT_DELAY_AFTER failures, the newest one delays every address by
        ``account_delay``.
        """
        recent = [f for f in self.failed_logins if f.at > now - LOGIN_WINDOW]
        mine = [f for f in recent if f.address == address]
        ends = []
        if len(mine) >= MAX_FAILED_LOGINS:
            ends.append(mine[-MAX_FAILED_LOGINS].at + LOGIN_WINDOW)
        if len(recent) >= MAX_ACCOUNT_FAILED_LOGINS:
            ends.append(recent[-MAX_ACCOUNT_FAILED_LOGINS].at + LOGIN_WINDOW)
        if recent:
            ends.append(recent[-1].at + account_delay(len(recent)))
        until = max(ends, default=now)
        return until if until > now else None

    def clone(self) -> User:
        """A copy that can take commands without touching this user (only the list is mutable)."""
        copy = object.__new__(User)
        copy.__dict__.update(self.__dict__)
        copy.failed_logins = list(self.failed_logins)
        copy._pending_events = []
        return copy

    @property
    def registered_at(self) -> datetime:
        return self.created_on

    def __repr__(self) -> str:
        return (
            f"User(id={self.id!r}, email={self.email!r}, role={self.role.value!r}, "
            f"disabled={self.disabled!r}, version={self.version!r})"
        )


class UserDirectory(Aggregate):
    """The ids of every registered user, in registration order; created by the first one."""

    TOPIC = "jobledger:UserDirectory"

    class Event(Aggregate.Event):
        TOPIC = "jobledger:UserDirectory.Event"
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "jobledger:UserDirectory.Created"

        def apply(self, directory: UserDirectory) -> None:
            directory.user_ids = []

    class UserAdded(Event):
        TOPIC = "jobledger:UserDirectory.UserAdded"
        user_id: UUID

        def apply(self, directory: UserDirectory) -> None:
            directory.user_ids.append(self.user_id)

    def __init__(self) -> None:
        """The state is assigned by ``Created.apply``."""

    user_ids: list[UUID]

    @classmethod
    def create(cls, *, actor: str) -> UserDirectory:
        """Creates the directory; only one can ever exist (its id is fixed)."""
        return cls._create(cls.Created, id=DIRECTORY_ID, actor=checked_actor(actor))

    def add(self, user: User, *, actor: str) -> None:
        """Lists a newly registered user."""
        self.trigger_event(self.UserAdded, actor=checked_actor(actor), user_id=user.id)


def account_delay(failures: int) -> timedelta:
    """How long the account waits after its newest failure, with ``failures`` in the window."""
    if failures <= ACCOUNT_DELAY_AFTER:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - ACCOUNT_DELAY_AFTER, 16)), MAX_ACCOUNT_DELAY)


def _address(address: str) -> str:
    if not isinstance(address, str) or not address.strip():
        return UNKNOWN_ADDRESS
    return address[:MAX_ADDRESS_CHARS]


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInputError(
            "role", f"must be one of {', '.join(r.value for r in Role)}"
        ) from None


def _password_hash(password_hash: str) -> str:
    if (
        not isinstance(password_hash, str)
        or not password_hash.startswith("$")
        or len(password_hash) > MAX_PASSWORD_HASH_CHARS
    ):
        raise InvalidInputError("passwordHash", "must be an encoded password hash")
    return password_hash
