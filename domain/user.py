"""Users and the directory of users: aggregates in the same log as the jobs.

A user's id is derived from the normalised email (``uuid5``), so an email can be registered only
once without a second table. The domain keeps only the password *hash*; hashing is the entry
points' business. Failed logins are events on the user, so the throttle holds across processes
(the store's optimistic concurrency decides between them) and the history shows who was locked
out, and when.

The ``UserDirectory`` is one aggregate with a fixed id: its creation is the setup of the first
user (a second setup conflicts on that id), and it lists every user's id in registration order.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInputError, LoginThrottledError

USER_NAMESPACE = UUID("3d7c1f0e-8a2b-4c5d-9e6f-1a2b3c4d5e6f")
DIRECTORY_ID = uuid5(USER_NAMESPACE, "jobledger:user-directory")
MAX_EMAIL_CHARS = 254
MAX_PASSWORD_HASH_CHARS = 1_000
MAX_FAILED_LOGINS = 5
LOGIN_WINDOW = timedelta(minutes=15)
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

        def apply(self, user: User) -> None:
            user.failed_logins = [*user.failed_logins, self.timestamp][-MAX_FAILED_LOGINS:]

    def __init__(self) -> None:
        """The state is assigned by ``Registered.apply``."""

    email: str
    role: Role
    password_hash: str
    disabled: bool
    #: Times of the newest failed logins (at most MAX_FAILED_LOGINS).
    failed_logins: list[datetime]

    @classmethod
    def register(cls, *, email: str, role: Role | str, password_hash: str, actor: str) -> User:
        """Registers a user; the id is derived from the email."""
        canonical = normalise_email(email)
        return cls._create(
            cls.Registered,
            id=uuid5(USER_NAMESPACE, canonical),
            actor=_text("actor", actor),
            email=canonical,
            role=_role(role).value,
            password_hash=_password_hash(password_hash),
        )

    def change_role(self, role: Role | str, *, actor: str) -> None:
        """Gives the user another role (nothing is recorded when it is the same)."""
        role = _role(role)
        if role is not self.role:
            self.trigger_event(self.RoleChanged, actor=_text("actor", actor), role=role.value)

    def change_password(self, password_hash: str, *, actor: str) -> None:
        """Replaces the password hash (a new password, or the same one rehashed)."""
        self.trigger_event(
            self.PasswordChanged,
            actor=_text("actor", actor),
            password_hash=_password_hash(password_hash),
        )

    def disable(self, *, actor: str) -> None:
        """Stops the user from logging in and refuses the user's tokens."""
        if not self.disabled:
            self.trigger_event(self.Disabled, actor=_text("actor", actor))

    def enable(self, *, actor: str) -> None:
        """Lets a disabled user back in."""
        if self.disabled:
            self.trigger_event(self.Enabled, actor=_text("actor", actor))

    def fail_login(self) -> None:
        """Records a failed login, unless the account is already locked (then raises)."""
        self.check_login_allowed()
        self.trigger_event(self.LoginFailed, actor=ANONYMOUS)

    def check_login_allowed(self, now: datetime | None = None) -> None:
        """Raises LoginThrottledError while the account is locked after too many failures."""
        now = now or datetime.now(UTC)
        until = self.login_locked_until(now)
        if until is not None:
            raise LoginThrottledError(self.id, math.ceil((until - now).total_seconds()))

    def login_locked_until(self, now: datetime) -> datetime | None:
        """When the lock ends: MAX_FAILED_LOGINS failures within LOGIN_WINDOW lock the rest of it.

        None when logins are allowed at ``now``.
        """
        if len(self.failed_logins) < MAX_FAILED_LOGINS:
            return None
        until = self.failed_logins[-MAX_FAILED_LOGINS] + LOGIN_WINDOW
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
        return cls._create(cls.Created, id=DIRECTORY_ID, actor=_text("actor", actor))

    def add(self, user: User, *, actor: str) -> None:
        """Lists a newly registered user."""
        self.trigger_event(self.UserAdded, actor=_text("actor", actor), user_id=user.id)


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


def _text(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidInputError(field, "must be a non-empty string of at most 200 characters")
    return value
