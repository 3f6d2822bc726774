"""Errors raised by the job ledger's domain and use cases.

Every error the ledger raises on purpose derives from :class:`JobLedgerError`, so an entry point
can translate the whole family in one place::

    JobLedgerError
    ├── JobNotFoundError              the job does not exist (or not at that version or time)
    ├── PageNotFoundError             a list cursor names no page of the query it came with
    ├── InvalidInputError             a value is malformed or out of bounds, whatever the state
    ├── IdempotencyKeyReusedError     an idempotency key came back with a different payload
    ├── JobConflictError              the command conflicts with the job's current state
    │   ├── InvalidTransitionError    the command is not allowed from the job's status
    │   ├── ProgressConflictError     progress would go down or beyond the total
    │   ├── NotDueError               the job may not be started before its runAt
    │   ├── LeaseLostError            a worker's attempt is no longer the job's running attempt
    │   └── LeaseRenewedError         the lease a sweeper read was extended or ended meanwhile
    ├── VersionMismatchError          the caller expected another version of the job
    ├── LedgerUnavailableError        the store cannot take the command right now
    │   └── ConcurrencyExhaustedError every retry lost an optimistic-concurrency race
    ├── UserNotFoundError             no user has that id or email
    ├── UserConflictError             the user command conflicts with the users already there
    │   ├── UserExistsError           a user with that email is already registered
    │   └── SetupCompletedError       the first admin was already set up
    └── LoginThrottledError           too many failed logins for the account, for now
        └── AddressThrottledError     too many failed logins from one address, for now
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID


class JobLedgerError(Exception):
    """Raised when the ledger refuses a command or a query."""


class JobNotFoundError(JobLedgerError):
    """Raised when no job exists with the given id."""

    def __init__(self, job_id: UUID, detail: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(detail or f"Job {job_id} not found.")


class PageNotFoundError(JobLedgerError):
    """Raised when a list cursor names no page: this server did not issue it for that query."""


class InvalidInputError(JobLedgerError, ValueError):
    """Raised when a command's argument is malformed or out of bounds."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        self.detail = detail
        super().__init__(f"{field}: {detail}")


class IdempotencyKeyReusedError(JobLedgerError):
    """Raised when an idempotency key is reused with a different payload: the key is taken, a
    conflict with what the ledger recorded, not a malformed value."""

    def __init__(self, job_id: UUID | None = None) -> None:
        self.job_id = job_id
        if job_id is None:
            super().__init__(
                "Idempotency-Key: this key already answered another request (method, path or "
                "body differ); use a new key for a new command"
            )
            return
        super().__init__(
            f"Idempotency-Key: this key already created job {job_id} with a different payload; "
            "use a new key for a new job"
        )


class JobConflictError(JobLedgerError):
    """Raised when a command conflicts with the job's current state."""


class InvalidTransitionError(JobConflictError):
    """Raised when a command is not allowed from the job's current status."""

    def __init__(self, job_id: UUID, command: str, status: str, allowed_from: tuple[str, ...]):
        self.job_id = job_id
        self.command = command
        self.status = status
        self.allowed_from = allowed_from
        super().__init__(
            f"Cannot {command} job {job_id}: it is {status}; "
            f"{command} is allowed only when it is {' or '.join(allowed_from)}."
        )


class ProgressConflictError(JobConflictError):
    """Raised when reported progress would go down or exceed the total."""


class NotDueError(JobConflictError):
    """Raised when a job is started before its ``runAt``."""

    def __init__(self, job_id: UUID, run_at: datetime) -> None:
        self.job_id = job_id
        self.run_at = run_at
        super().__init__(
            f"Cannot start job {job_id} yet: it is due at {run_at.isoformat()}; claim due jobs "
            "with POST /api/v1/jobs/claim."
        )


class LeaseLostError(JobConflictError):
    """Raised when a worker writes for an attempt that is not the job's running attempt (its
    lease expired and the job was rescued, or the job ended): the attempt number fences it."""

    def __init__(self, job_id: UUID, attempt: int, status: str, current_attempt: int) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.status = status
        self.current_attempt = current_attempt
        super().__init__(
            f"Attempt {attempt} of job {job_id} no longer holds it: the job is {status} in "
            f"attempt {current_attempt}. Stop working on it; its result would not be recorded."
        )


class LeaseRenewedError(JobConflictError):
    """Raised when a lease a sweeper read has been extended or ended since: left alone."""


class VersionMismatchError(JobLedgerError):
    """Raised when a conditional command expected another version of the job."""

    def __init__(self, job_id: UUID, expected: int | Collection[int], actual: int) -> None:
        self.job_id = job_id
        self.expected = expected
        self.actual = actual
        versions = [expected] if isinstance(expected, int) else sorted(expected)
        if len(versions) == 1:
            named = f"not {versions[0]}"
        elif versions:
            named = "not any of " + ", ".join(map(str, versions))
        else:
            named = "which the condition does not name"
        super().__init__(f"Job {job_id} is at version {actual}, {named}.")


class LedgerUnavailableError(JobLedgerError):
    """Raised when the event store cannot take the command right now; retrying later may work."""


class ConcurrencyExhaustedError(LedgerUnavailableError):
    """Raised when a command lost every retry of an optimistic-concurrency race."""

    def __init__(self, job_id: UUID, attempts: int) -> None:
        self.job_id = job_id
        self.attempts = attempts
        super().__init__(
            f"Job {job_id} is changing too fast: gave up after {attempts} attempts; retry later."
        )


class UserNotFoundError(JobLedgerError):
    """Raised when no user has the given id or email."""

    def __init__(self, user_id: UUID) -> None:
        self.user_id = user_id
        super().__init__(f"User {user_id} not found.")


class UserConflictError(JobLedgerError):
    """Raised when a user command conflicts with the users already registered."""


class UserExistsError(UserConflictError):
    """Raised when a user with the same (normalised) email is already registered."""

    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(f"A user with email {email} is already registered.")


class SetupCompletedError(UserConflictError):
    """Raised when setting up the first admin after any user was registered."""

    def __init__(self) -> None:
        super().__init__("Setup is already done: users exist. Ask an admin for an account.")


class LoginThrottledError(JobLedgerError):
    """Raised when an account had too many failed logins recently; ``retry_after`` is in seconds."""

    def __init__(self, user_id: UUID, retry_after: int) -> None:
        self.user_id = user_id
        self.retry_after = retry_after
        super().__init__(
            f"Too many failed logins for this account; try again in {retry_after} seconds."
        )


class AddressThrottledError(LoginThrottledError):
    """Raised when one client address had too many failed logins recently, whatever the accounts.

    ``user_id`` is the nil UUID: no one account is throttled.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(UUID(int=0), retry_after)
        self.args = (
            f"Too many failed logins from your address; try again in {retry_after} seconds.",
        )
