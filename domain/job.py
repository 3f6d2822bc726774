"""The Job aggregate: a background job whose state is the fold of its events.

Each public command checks its input (``InvalidInputError``), then the job's state
(``JobConflictError``), and only then triggers its event; an event's ``apply`` only assigns.
Commands that depend on the time take ``now`` from the caller, read before the event, so a test
(or a replay) decides what time it is. Events carry explicit topics, so renaming or moving a class
never orphans stored history. Client-supplied JSON (``data``, error ``details``, ``result``) is
stored as canonical JSON text: it stays opaque to the library's transcoder, whose own
``{"_type_", "_data_"}`` markers a client could otherwise forge.

A job runs in **attempts**: each claim starts the next one, with a lease a worker keeps alive
(heartbeats, progress). The attempt number fences every worker write: a command that names an
attempt is refused (``LeaseLostError``) unless that attempt is the job's running one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as AggregateSnapshot

from domain.backoff import DEFAULT_MAX_ATTEMPTS, Backoff
from domain.errors import (
    InvalidInputError,
    InvalidTransitionError,
    LeaseLostError,
    LeaseRenewedError,
    NotDueError,
    ProgressConflictError,
)
from domain.inputs import MAX_ITEMS as MAX_ITEMS
from domain.inputs import instant, integer, json_text, seconds, text

MAX_ERROR_LOG = 100
MAX_TYPE_CHARS = 100
MAX_ACTOR_CHARS = 200
MAX_WORKER_CHARS = 200
MAX_MESSAGE_CHARS = 2_000
MAX_REASON_CHARS = 2_000
MAX_ITEM_CHARS = 1_000
MAX_DETAILS_BYTES = 16 * 1024
MAX_RESULT_BYTES = 16 * 1024
MAX_DATA_BYTES = 32 * 1024
#: The highest version a request may name (larger integers are not exact in JSON).
MAX_VERSION = 2**53
MIN_PRIORITY, MAX_PRIORITY = -100, 100
MIN_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS = 1, 100
MIN_LEASE_SECONDS, MAX_LEASE_SECONDS = 5.0, 3600.0
MAX_RETRY_IN_SECONDS = 86_400.0
#: The actor of the events the server records on its own when a lease passes.
SWEEPER_ACTOR = "system:sweeper"
LEASE_EXPIRED_REASON = "lease expired"
_BACKOFF = Backoff()


class JobStatus(StrEnum):
    """Where a job is in its life."""

    #: Created (or retried by hand), waiting for a worker to claim it.
    PENDING = "pending"
    #: A worker started it and reports progress.
    PROCESSING = "processing"
    #: An attempt failed or its lease expired; the next attempt is due at ``run_at``.
    RETRYING = "retrying"
    #: Finished successfully (terminal).
    COMPLETED = "completed"
    #: Finished unsuccessfully (terminal).
    FAILED = "failed"
    #: Cancelled (terminal).
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    """One error a worker reported while running a job."""

    message: str
    item: str | None
    details_json: str | None
    at: datetime

    @property
    def details(self) -> Any:
        return None if self.details_json is None else json.loads(self.details_json)


class AttemptOutcome(StrEnum):
    """How an attempt ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    LEASE_EXPIRED = "lease-expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt at running a job: who claimed it, when, and how it ended (None: running)."""

    attempt: int
    worker: str | None
    claimed_at: datetime
    ended_at: datetime | None = None
    outcome: AttemptOutcome | None = None
    #: The failure reason, for an attempt that ended ``failed``.
    error: str | None = None


class Job(Aggregate):
    """A background job: created, claimed in attempts, then completed, failed or cancelled."""

    TOPIC = "jobledger:Job"

    class Event(Aggregate.Event):
        TOPIC = "jobledger:Job.Event"
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "jobledger:Job.Created"
        class_version = 2
        job_type: str
        data_json: str
        total_items: int | None
        priority: int
        run_at: datetime
        max_attempts: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Jobs created before workers: priority 0, due at once, the default attempts."""
            state["priority"] = 0
            state["run_at"] = state["timestamp"]
            state["max_attempts"] = DEFAULT_MAX_ATTEMPTS

        def apply(self, job: Job) -> None:
            job.job_type = self.job_type
            job.data_json = self.data_json
            job.status = JobStatus.PENDING
            job.created_by = self.actor
            job.total_items = self.total_items
            job.processed_items = 0
            job.error_count = 0
            job.error_log = []
            job.result_json = None
            job.failure_reason = None
            job.cancel_reason = None
            job.started_at = None
            job.completed_at = None
            job.priority = self.priority
            job.run_at = self.run_at
            job.max_attempts = self.max_attempts
            job.initial_max_attempts = self.max_attempts
            job.attempt = 0
            job.worker = None
            job.lease_expires_at = None
            job.lease_seconds = None
            job.cancel_requested = False
            job.attempts = []

    class Started(Event):
        """An attempt began: ``attempt`` is its number, the lease is optional (``start``)."""

        TOPIC = "jobledger:Job.Started"
        class_version = 2
        attempt: int
        worker: str | None
        lease_expires_at: datetime | None
        lease_seconds: float | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Starts recorded before workers: the first attempt, without a lease."""
            state["attempt"] = 1
            state["worker"] = None
            state["lease_expires_at"] = None
            state["lease_seconds"] = None

        def apply(self, job: Job) -> None:
            job.status = JobStatus.PROCESSING
            job.started_at = self.timestamp
            job.attempt = self.attempt
            job.worker = self.worker
            job.lease_expires_at = self.lease_expires_at
            job.lease_seconds = self.lease_seconds
            job.processed_items = 0
            job.attempts.append(AttemptRecord(self.attempt, self.worker, self.timestamp))

    class LeaseExtended(Event):
        """A heartbeat moved the running attempt's lease on."""

        TOPIC = "jobledger:Job.LeaseExtended"
        attempt: int
        lease_expires_at: datetime
        lease_seconds: float

        def apply(self, job: Job) -> None:
            job.lease_expires_at = self.lease_expires_at
            job.lease_seconds = self.lease_seconds

    class ProgressUpdated(Event):
        """Progress, which also extends the lease (``lease_expires_at``: the lease after it)."""

        TOPIC = "jobledger:Job.ProgressUpdated"
        class_version = 2
        processed_items: int
        total_items: int | None
        lease_expires_at: datetime | None
        lease_seconds: float | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Progress recorded before leases."""
            state["lease_expires_at"] = None
            state["lease_seconds"] = None

        def apply(self, job: Job) -> None:
            job.processed_items = self.processed_items
            job.total_items = self.total_items
            job.lease_expires_at = self.lease_expires_at
            job.lease_seconds = self.lease_seconds

    class ErrorLogged(Event):
        TOPIC = "jobledger:Job.ErrorLogged"
        message: str
        item: str | None
        details_json: str | None

        def apply(self, job: Job) -> None:
            job.error_count += 1
            job.error_log.append(
                ErrorEntry(self.message, self.item, self.details_json, self.timestamp)
            )
            if len(job.error_log) > MAX_ERROR_LOG:
                del job.error_log[0]

    class Completed(Event):
        TOPIC = "jobledger:Job.Completed"
        result_json: str | None

        def apply(self, job: Job) -> None:
            job._end_attempt(AttemptOutcome.COMPLETED, self.timestamp)
            job.status = JobStatus.COMPLETED
            job.result_json = self.result_json
            job.completed_at = self.timestamp

    class AttemptFailed(Event):
        """A running attempt failed and attempts are left: the next one is due at ``retry_at``."""

        TOPIC = "jobledger:Job.AttemptFailed"
        attempt: int
        reason: str
        retry_at: datetime

        def apply(self, job: Job) -> None:
            job._end_attempt(AttemptOutcome.FAILED, self.timestamp, self.reason)
            job.status = JobStatus.RETRYING
            job.run_at = self.retry_at

    class Failed(Event):
        TOPIC = "jobledger:Job.Failed"
        reason: str

        def apply(self, job: Job) -> None:
            job._end_attempt(AttemptOutcome.FAILED, self.timestamp, self.reason)
            job.status = JobStatus.FAILED
            job.failure_reason = self.reason
            job.completed_at = self.timestamp

    class LeaseExpired(Event):
        """The running attempt's lease passed: retrying at ``retry_at``; when None, cancelled
        (a cancel was requested) or failed (no attempt left)."""

        TOPIC = "jobledger:Job.LeaseExpired"
        attempt: int
        retry_at: datetime | None

        def apply(self, job: Job) -> None:
            job._end_attempt(AttemptOutcome.LEASE_EXPIRED, self.timestamp)
            if self.retry_at is not None:
                job.status = JobStatus.RETRYING
                job.run_at = self.retry_at
                return
            job.completed_at = self.timestamp
            if job.cancel_requested:
                job.status = JobStatus.CANCELLED
            else:
                job.status = JobStatus.FAILED
                job.failure_reason = LEASE_EXPIRED_REASON

    class CancelRequested(Event):
        """Someone asked the running attempt to stop; its worker acknowledges."""

        TOPIC = "jobledger:Job.CancelRequested"
        reason: str | None

        def apply(self, job: Job) -> None:
            job.cancel_requested = True
            job.cancel_reason = self.reason

    class Cancelled(Event):
        TOPIC = "jobledger:Job.Cancelled"
        reason: str | None

        def apply(self, job: Job) -> None:
            job._end_attempt(AttemptOutcome.CANCELLED, self.timestamp)
            job.status = JobStatus.CANCELLED
            job.cancel_reason = self.reason
            job.completed_at = self.timestamp

    class Retried(Event):
        """A failed or cancelled job was sent back to pending for ``attempts`` more attempts."""

        TOPIC = "jobledger:Job.Retried"
        attempts: int
        max_attempts: int
        run_at: datetime

        def apply(self, job: Job) -> None:
            job.status = JobStatus.PENDING
            job.max_attempts = self.max_attempts
            job.run_at = self.run_at
            job.failure_reason = None
            job.completed_at = None
            job.result_json = None
            job.cancel_requested = False
            job.cancel_reason = None

    class Snapshot(AggregateSnapshot):
        """A job's state at one version, in plain JSON types."""

        TOPIC = "jobledger:Job.Snapshot"
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Snapshots taken before workers: at most one attempt, without a lease."""
            job = state["state"]
            started = job["started_at"]
            job.update(
                priority=0, run_at=job["_created_on"], max_attempts=DEFAULT_MAX_ATTEMPTS,
                initial_max_attempts=DEFAULT_MAX_ATTEMPTS, attempt=0 if started is None else 1,
                worker=None, lease_expires_at=None, lease_seconds=None, cancel_requested=False,
                attempts=[] if started is None else [_legacy_attempt(job)],
            )  # fmt: skip

        @classmethod
        def take(cls, aggregate: Any) -> Job.Snapshot:
            snapshot: Job.Snapshot = super().take(aggregate)
            state = snapshot.state
            state["status"] = str(state["status"])
            state["error_log"] = [
                [e.message, e.item, e.details_json, e.at] for e in state["error_log"]
            ]
            state["attempts"] = [
                [a.attempt, a.worker, a.claimed_at, a.ended_at,
                 None if a.outcome is None else str(a.outcome), a.error]
                for a in state["attempts"]
            ]  # fmt: skip
            return snapshot

        def mutate(self, _: None) -> Job:
            job = super().mutate(None)
            assert isinstance(job, Job)
            job.status = JobStatus(job.status)
            job.error_log = [ErrorEntry(*fields) for fields in cast(list[list[Any]], job.error_log)]
            job.attempts = [_attempt_of(fields) for fields in cast(list[list[Any]], job.attempts)]
            return job

    def __init__(self) -> None:
        """The state is assigned by ``Created.apply``."""

    job_type: str
    data_json: str
    status: JobStatus
    created_by: str
    total_items: int | None
    processed_items: int
    error_count: int
    error_log: list[ErrorEntry]
    result_json: str | None
    failure_reason: str | None
    cancel_reason: str | None
    started_at: datetime | None
    completed_at: datetime | None
    priority: int
    #: Not claimable before this instant.
    run_at: datetime
    max_attempts: int
    #: The ``max_attempts`` given at creation (what a manual retry grants by default).
    initial_max_attempts: int
    #: The number of the latest attempt (0 before the first claim).
    attempt: int
    #: The label of the running attempt's worker (None when no attempt runs).
    worker: str | None
    lease_expires_at: datetime | None
    #: The lease length last granted (what a heartbeat without ``lease_seconds`` extends by).
    lease_seconds: float | None
    cancel_requested: bool
    attempts: list[AttemptRecord]

    @classmethod
    def create(
        cls,
        *,
        job_id: UUID,
        job_type: str,
        data: Any,
        total_items: int | None,
        actor: str,
        now: datetime | None = None,
        priority: int = 0,
        run_at: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Job:
        """Creates a pending job, due at ``run_at`` (default: ``now``)."""
        return cls._create(
            cls.Created,
            id=job_id,
            actor=checked_actor(actor),
            job_type=text("type", job_type, MAX_TYPE_CHARS),
            data_json=json_text("data", data, MAX_DATA_BYTES),
            total_items=None if total_items is None else integer("totalItems", total_items, 1),
            priority=integer("priority", priority, MIN_PRIORITY, MAX_PRIORITY),
            run_at=_now(now) if run_at is None else instant("runAt", run_at),
            max_attempts=integer("maxAttempts", max_attempts, MIN_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS),
        )

    def start(
        self,
        *,
        actor: str,
        now: datetime | None = None,
        worker: str | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """Starts the next attempt of a due job (a claim): with a lease when ``lease_seconds``
        is given, else it is never rescued."""
        actor = checked_actor(actor)
        now = _now(now)
        if worker is not None:
            worker = text("worker", worker, MAX_WORKER_CHARS)
        lease = _lease_seconds(lease_seconds)
        self._require("start", JobStatus.PENDING, JobStatus.RETRYING)
        if self.run_at > now:
            raise NotDueError(self.id, self.run_at)
        self.trigger_event(
            self.Started, actor=actor, attempt=self.attempt + 1, worker=worker,
            lease_expires_at=None if lease is None else now + timedelta(seconds=lease),
            lease_seconds=lease,
        )  # fmt: skip

    def heartbeat(
        self,
        attempt: int,
        *,
        actor: str,
        now: datetime | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """Keeps the running attempt's lease alive; records ``LeaseExtended`` only when less than
        half the lease is left (faster beats record nothing)."""
        actor = checked_actor(actor)
        now = _now(now)
        lease = _lease_seconds(lease_seconds)
        self._fence(_attempt_number(attempt))
        length = self.lease_seconds if lease is None else lease
        if length is None:
            return
        expires = self.lease_expires_at
        if expires is not None and (expires - now).total_seconds() >= length / 2:
            return
        self.trigger_event(
            self.LeaseExtended, actor=actor, attempt=self.attempt,
            lease_expires_at=now + timedelta(seconds=length), lease_seconds=length,
        )  # fmt: skip

    def update_progress(
        self,
        processed_items: int,
        total_items: int | None = None,
        *,
        actor: str,
        now: datetime | None = None,
        attempt: int | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """Reports how many items a processing job has done (and maybe its new total); extends
        the lease as a heartbeat would."""
        actor = checked_actor(actor)
        now = _now(now)
        processed_items = integer("processedItems", processed_items, 0)
        if total_items is not None:
            total_items = integer("totalItems", total_items, 1)
        lease = _lease_seconds(lease_seconds)
        self._fence(None if attempt is None else _attempt_number(attempt))
        self._require("update progress of", JobStatus.PROCESSING)
        total = self.total_items if total_items is None else total_items
        if processed_items < self.processed_items:
            raise ProgressConflictError(
                f"Progress of job {self.id} cannot go down: {processed_items} items reported "
                f"after {self.processed_items}."
            )
        if total is not None and processed_items > total:
            raise ProgressConflictError(
                f"Progress of job {self.id} cannot exceed its total: {processed_items} of "
                f"{total} items."
            )
        length = self.lease_seconds if lease is None else lease
        self.trigger_event(
            self.ProgressUpdated, actor=actor, processed_items=processed_items, total_items=total,
            lease_expires_at=None if length is None else now + timedelta(seconds=length),
            lease_seconds=length,
        )  # fmt: skip

    def log_error(
        self,
        message: str,
        item: str | None = None,
        details: Any = None,
        *,
        actor: str,
        attempt: int | None = None,
    ) -> None:
        """Records an error a worker met; the job carries on."""
        actor = checked_actor(actor)
        message = text("message", message, MAX_MESSAGE_CHARS)
        if item is not None:
            item = text("item", item, MAX_ITEM_CHARS)
        details_json = None if details is None else json_text("details", details, MAX_DETAILS_BYTES)
        self._fence(None if attempt is None else _attempt_number(attempt))
        self._require(
            "log an error on", JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.RETRYING
        )
        self.trigger_event(
            self.ErrorLogged, actor=actor, message=message, item=item, details_json=details_json
        )

    def complete(self, result: Any = None, *, actor: str, attempt: int | None = None) -> None:
        """Marks a processing job as completed (also after a cancel request)."""
        actor = checked_actor(actor)
        result_json = None if result is None else json_text("result", result, MAX_RESULT_BYTES)
        self._fence(None if attempt is None else _attempt_number(attempt))
        self._require("complete", JobStatus.PROCESSING)
        self.trigger_event(self.Completed, actor=actor, result_json=result_json)

    def fail(
        self,
        reason: str,
        *,
        actor: str,
        now: datetime | None = None,
        backoff: Backoff = _BACKOFF,
        attempt: int | None = None,
        retry: bool = True,
        retry_in_seconds: float | None = None,
    ) -> None:
        """Fails the running attempt: retried after a backoff while attempts are left and
        ``retry`` holds, else the job fails; a requested cancel is acknowledged instead. A job
        that is not running fails at once."""
        actor = checked_actor(actor)
        now = _now(now)
        reason = text("reason", reason, MAX_REASON_CHARS)
        if not isinstance(retry, bool):
            raise InvalidInputError("retry", "must be true or false")
        if retry_in_seconds is not None:
            retry_in_seconds = seconds("retryInSeconds", retry_in_seconds, 0, MAX_RETRY_IN_SECONDS)
        self._fence(None if attempt is None else _attempt_number(attempt))
        self._require("fail", JobStatus.PENDING, JobStatus.RETRYING, JobStatus.PROCESSING)
        if self.status is not JobStatus.PROCESSING:
            self.trigger_event(self.Failed, actor=actor, reason=reason)
        elif self.cancel_requested:
            self.trigger_event(self.Cancelled, actor=actor, reason=self.cancel_reason or reason)
        elif retry and self.attempt < self.max_attempts:
            wait = backoff.seconds(self.attempt) if retry_in_seconds is None else retry_in_seconds
            self.trigger_event(
                self.AttemptFailed, actor=actor, attempt=self.attempt, reason=reason,
                retry_at=now + timedelta(seconds=wait),
            )  # fmt: skip
        else:
            self.trigger_event(self.Failed, actor=actor, reason=reason)

    def expire_lease(
        self,
        attempt: int,
        lease_expires_at: datetime,
        *,
        now: datetime | None = None,
        backoff: Backoff = _BACKOFF,
    ) -> None:
        """Ends the running attempt whose lease passed, as the sweeper read it (that attempt,
        that lease); raises LeaseRenewedError when the job moved on meanwhile."""
        now = _now(now)
        current = self.status is JobStatus.PROCESSING and self.attempt == attempt
        if not current or self.lease_expires_at != lease_expires_at or lease_expires_at > now:
            raise LeaseRenewedError(
                f"Job {self.id}'s attempt {attempt} lease (until {lease_expires_at.isoformat()}) "
                "was extended or ended meanwhile."
            )
        retry_at = None
        if not self.cancel_requested and self.attempt < self.max_attempts:
            retry_at = now + timedelta(seconds=backoff.seconds(self.attempt))
        self.trigger_event(
            self.LeaseExpired, actor=SWEEPER_ACTOR, attempt=attempt, retry_at=retry_at
        )

    def cancel(
        self,
        reason: str | None = None,
        *,
        actor: str,
        attempt: int | None = None,
        ask_running: bool = True,
    ) -> None:
        """Cancels a job that is not running; asks a running one to stop (``ask_running``);
        with ``attempt`` (its worker), cancels the running attempt at once."""
        actor = checked_actor(actor)
        if reason is not None:
            reason = text("reason", reason, MAX_REASON_CHARS)
        if attempt is not None:
            self._fence(_attempt_number(attempt))
            self.trigger_event(self.Cancelled, actor=actor, reason=reason or self.cancel_reason)
            return
        if ask_running and self.status is JobStatus.PROCESSING:
            if not self.cancel_requested:
                self.trigger_event(self.CancelRequested, actor=actor, reason=reason)
            return
        allowed = (JobStatus.PENDING, JobStatus.RETRYING)
        self._require("cancel", *allowed, *((JobStatus.PROCESSING,) if ask_running else ()))
        self.trigger_event(self.Cancelled, actor=actor, reason=reason)

    def retry(
        self, max_attempts: int | None = None, *, actor: str, now: datetime | None = None
    ) -> None:
        """Sends a failed or cancelled job back to pending for ``max_attempts`` more attempts
        (default: as many as it was created with); attempt numbers continue."""
        actor = checked_actor(actor)
        now = _now(now)
        more = (
            self.initial_max_attempts
            if max_attempts is None
            else integer("maxAttempts", max_attempts, MIN_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS)
        )
        self._require("retry", JobStatus.FAILED, JobStatus.CANCELLED)
        self.trigger_event(
            self.Retried, actor=actor, attempts=more, max_attempts=self.attempt + more, run_at=now
        )

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        """Triggers an event stamped now, or at the previous event's time if the clock says
        earlier (another host's clock, or this one stepped back): a job's events are in time
        order as well as version order, which the time index relies on."""
        kwargs.setdefault("timestamp", max(event_class.create_timestamp(), self.modified_on))
        super().trigger_event(event_class, **kwargs)

    def clone(self) -> Job:
        """A copy that can take commands without touching this job (only the lists are mutable).

        It resets the library's private ``_pending_events`` list (checked against eventsourcing
        9.5.6), which ``collect_events`` drains: a shared list would hand the copy's events to
        the original. A deep copy would do the same, at many times the cost per command.
        """
        copy = object.__new__(Job)
        copy.__dict__.update(self.__dict__)
        copy.error_log = list(self.error_log)
        copy.attempts = list(self.attempts)
        copy._pending_events = []
        return copy

    @property
    def progress(self) -> int:
        """Percent done (see ``progress_of``)."""
        return progress_of(self.status, self.processed_items, self.total_items)

    @property
    def data(self) -> Any:
        return json.loads(self.data_json)

    @property
    def result(self) -> Any:
        return None if self.result_json is None else json.loads(self.result_json)

    @property
    def created_at(self) -> datetime:
        return self.created_on

    @property
    def updated_at(self) -> datetime:
        return self.modified_on

    def _require(self, command: str, *allowed: JobStatus) -> None:
        if self.status not in allowed:
            raise InvalidTransitionError(
                self.id, command, self.status.value, tuple(s.value for s in allowed)
            )

    def _fence(self, attempt: int | None) -> None:
        """Refuses a worker's write for an attempt that is not the running one."""
        if attempt is not None and (
            self.status is not JobStatus.PROCESSING or self.attempt != attempt
        ):
            raise LeaseLostError(self.id, attempt, self.status.value, self.attempt)

    def _end_attempt(self, outcome: AttemptOutcome, at: datetime, error: str | None = None) -> None:
        """Closes the running attempt's record (events that end a job that is not running
        leave the records as they are)."""
        if self.status is JobStatus.PROCESSING and self.attempts:
            failed = outcome is AttemptOutcome.FAILED
            self.attempts[-1] = replace(
                self.attempts[-1], ended_at=at, outcome=outcome, error=error if failed else None
            )
        self.worker = None
        self.lease_expires_at = None


def progress_of(status: JobStatus, processed_items: int, total_items: int | None) -> int:
    """Percent done: floor, capped at 99 until completed; 0 while the total is unknown."""
    if status is JobStatus.COMPLETED:
        return 100
    if not total_items:
        return 0
    return min(processed_items * 100 // total_items, 99)


def checked_actor(actor: str) -> str:
    """The actor of an event (a user id, ``cli:<name>``, ``system:<part>``): any aggregate's
    events name it the same way; raises InvalidInputError otherwise."""
    return text("actor", actor, MAX_ACTOR_CHARS)


def _now(now: datetime | None) -> datetime:
    """The time a command runs at: the caller's clock (the ledger's), else this host's."""
    return datetime.now(UTC) if now is None else instant("now", now)


def _lease_seconds(value: float | None) -> float | None:
    if value is None:
        return None
    return seconds("leaseSeconds", value, MIN_LEASE_SECONDS, MAX_LEASE_SECONDS)


def _attempt_number(value: int) -> int:
    return integer("attempt", value, 1)


def _attempt_of(fields: list[Any]) -> AttemptRecord:
    number, worker, claimed_at, ended_at, outcome, error = fields
    return AttemptRecord(
        number,
        worker,
        claimed_at,
        ended_at,
        None if outcome is None else AttemptOutcome(outcome),
        error,
    )


def _legacy_attempt(job: dict[str, Any]) -> list[Any]:
    """The one attempt a job snapshotted before workers had, as a snapshot stores it."""
    outcomes = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}
    outcome = outcomes.get(job["status"])
    error = job["failure_reason"] if outcome == "failed" else None
    ended = job["completed_at"] if outcome else None
    return [1, None, job["started_at"], ended, outcome, error]
