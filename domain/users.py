"""UserAccounts: the ledger's user use cases (setup once, register, change, list, failed logins,
unlocking).

A mixin of ``JobLedger``: users live in the same application and log as the jobs. Every command
loads, calls the ``User``'s (or the ``UserDirectory``'s) methods, and saves their events at once;
a save that loses an optimistic-concurrency race (another process changed the same user) is
retried on fresh state (``domain.retries.until_saved``).

Every request reads its caller, so users are kept in a cache and caught up with the store on each
read (one select of newer events, nothing decoded when there are none): a user disabled through
another process is refused at once, and a user is never folded again from all its events. While
this process's projection runner reports what the view shows, ``current_user`` answers without
the store read (``domain.cache``): a change answered once the view shows it reaches it first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.cache import AggregateCache
from domain.errors import (
    LedgerUnavailableError,
    SetupCompletedError,
    UserConflictError,
    UserExistsError,
    UserNotFoundError,
)
from domain.retries import store_errors, until_saved
from domain.user import DIRECTORY_ID, UNKNOWN_ADDRESS, Role, User, UserDirectory, user_id_for

MAX_USER_ATTEMPTS = 12
USER_CACHE_SIZE = 1024
#: The furthest a page of the user list may start.
MAX_USER_OFFSET = 1_000_000


class UserAccounts(Application[UUID]):
    """User use cases, mixed into the job ledger so users and jobs share one log."""

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self._users_lock = threading.Lock()
        self._users = AggregateCache(self.events, self._load_user, User.clone, USER_CACHE_SIZE)

    def set_up_admin(self, *, email: str, password_hash: str) -> User:
        """Registers the first user, an admin; raises SetupCompletedError once any user exists."""
        actor = str(user_id_for(email))
        user = User.register(email=email, role=Role.ADMIN, password_hash=password_hash, actor=actor)
        directory = UserDirectory.create(actor=actor)
        directory.add(user, actor=actor)
        with self._users_lock, store_errors():
            try:
                self.save(directory, user)
            except IntegrityError:
                raise SetupCompletedError from None
        self._users.remember(user)
        return user

    def register_user(
        self, *, email: str, role: Role | str, password_hash: str, actor: str
    ) -> User:
        """Registers a user; raises UserExistsError when the email is taken."""

        def attempt(user: User) -> User:
            if self._find(user.id) is not None:
                raise UserExistsError(user.email)
            directory = self._directory() or UserDirectory.create(actor=actor)
            directory.add(user, actor=actor)
            self.save(directory, user)
            self._users.remember(user)
            return user

        with self._users_lock, store_errors():
            return until_saved(
                attempt,
                lambda: User.register(
                    email=email, role=role, password_hash=password_hash, actor=actor
                ),
                attempts=MAX_USER_ATTEMPTS,
                exhausted=lambda: LedgerUnavailableError(
                    "Users are being registered too fast; retry later."
                ),
            )

    def get_user(self, user_id: UUID) -> User:
        """Returns the user with this id."""
        with store_errors():
            return self._existing(user_id)

    def current_user(self, user_id: UUID) -> User | None:
        """The user as this process knows it, when that is at least as new as the view, without
        reading the store; None when it cannot tell (see ``domain.cache``)."""
        return self._users.current(user_id)

    def find_user(self, email: str) -> User:
        """Returns the user with this email (raises InvalidInputError when it is not an email)."""
        return self.get_user(user_id_for(email))

    def list_users(self, *, limit: int, offset: int) -> tuple[list[User], int]:
        """Returns a page of users in registration order, and how many there are."""
        with store_errors():
            directory = self._directory()
            user_ids = [] if directory is None else directory.user_ids
            page = [self.get_user(user_id) for user_id in user_ids[offset : offset + limit]]
        return page, len(user_ids)

    def update_user(
        self,
        user_id: UUID,
        *,
        role: Role | str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
        actor: str,
    ) -> User:
        """Changes a user's role, password and whether it is disabled, in one save: all or none.

        Changes that are given and differ from the user's state are recorded, in that order. An
        admin cannot take away their own admin role, and nobody can disable themself.
        """
        if actor == str(user_id) and role is not None and role != Role.ADMIN:
            raise UserConflictError("Admins cannot take away their own admin role.")
        if actor == str(user_id) and disabled is True:
            raise UserConflictError("Users cannot disable themselves.")

        def change(user: User) -> None:
            if role is not None:
                user.change_role(role, actor=actor)
            if disabled is True:
                user.disable(actor=actor)
            if disabled is False:
                user.enable(actor=actor)
            if password_hash is not None:
                user.change_password(password_hash, actor=actor)

        return self._change(user_id, change)

    def change_role(self, user_id: UUID, role: Role | str, *, actor: str) -> User:
        """Gives a user another role; an admin cannot demote themself."""
        return self.update_user(user_id, role=role, actor=actor)

    def change_password(self, user_id: UUID, password_hash: str, *, actor: str) -> User:
        """Replaces a user's password hash."""
        return self.update_user(user_id, password_hash=password_hash, actor=actor)

    def disable_user(self, user_id: UUID, *, actor: str) -> User:
        """Disables a user: no more logins, and the user's tokens are refused at once."""
        return self.update_user(user_id, disabled=True, actor=actor)

    def enable_user(self, user_id: UUID, *, actor: str) -> User:
        """Enables a disabled user again."""
        return self.update_user(user_id, disabled=False, actor=actor)

    def record_failed_login(self, user_id: UUID, address: str = UNKNOWN_ADDRESS) -> User:
        """Counts a failed login from ``address``; raises LoginThrottledError when that address
        is already refused for the account."""
        return self._change(user_id, lambda user: user.fail_login(address))

    def unlock_logins(self, user_id: UUID, *, actor: str) -> User:
        """Forgets the user's failed logins, so every address may log in again."""
        return self._change(user_id, lambda user: user.unlock_logins(actor=actor))

    def _change(self, user_id: UUID, command: Callable[[User], None]) -> User:
        """Runs ``command`` on the user as the store has it, and saves its events at once."""

        def attempt(user: User) -> User:
            command(user)
            with self._users.saving(user.id) as keep:
                self.save(user)
                keep(user)
            return user

        with self._users_lock, store_errors():
            return until_saved(
                attempt,
                lambda: self._existing(user_id),
                attempts=MAX_USER_ATTEMPTS,
                exhausted=lambda: LedgerUnavailableError(
                    f"User {user_id} is changing too fast; retry later."
                ),
            )

    def _existing(self, user_id: UUID) -> User:
        user = self._find(user_id)
        if user is None:
            raise UserNotFoundError(user_id)
        return user

    def _find(self, user_id: UUID) -> User | None:
        try:
            return self._users.fresh(user_id)
        except AggregateNotFoundError:
            return None

    def _load_user(self, user_id: UUID) -> User:
        user: object = self.repository.get(user_id)
        if not isinstance(user, User):
            raise AggregateNotFoundError(user_id)
        return user

    def _directory(self) -> UserDirectory | None:
        try:
            directory: object = self.repository.get(DIRECTORY_ID)
        except AggregateNotFoundError:
            return None
        assert isinstance(directory, UserDirectory)
        return directory

