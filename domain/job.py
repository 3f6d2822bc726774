"""The Job aggregate: a background job whose state is the fold of its events.

Each public command checks its input (``InvalidInputError``), then the job's state
(``JobConflictError``), and only then triggers its event; an event's ``apply`` only assigns.
Events carry explicit topics, so renaming or moving a class never orphans stored history.
Client-supplied JSON (``data``, error ``details``, ``result``) is stored as canonical JSON text:
it stays opaque to the library's transcoder, whose own ``{"_type_", "_data_"}`` markers a
client could otherwise forge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as AggregateSnapshot

from domain.errors import InvalidInputError, InvalidTransitionError, ProgressConflictError

MAX_ERROR_LOG = 100
MAX_TYPE_CHARS = 100
MAX_ACTOR_CHARS = 200
MAX_MESSAGE_CHARS = 2_000
MAX_REASON_CHARS = 2_000
MAX_ITEM_CHARS = 1_000
MAX_DETAILS_BYTES = 16 * 1024
MAX_RESULT_BYTES = 16 * 1024
MAX_DATA_BYTES = 32 * 1024
MAX_JSON_DEPTH = 32
MAX_ITEMS = 2**53 - 1
#: The highest version a request may name (larger integers are not exact in JSON).
MAX_VERSION = 2**53


class JobStatus(StrEnum):
    """Where a job is in its life."""

    #: Created, waiting for a worker to start it.
    PENDING = "pending"
    #: A worker started it and reports progress.
    PROCESSING = "processing"
    #: Finished successfully (terminal).
    COMPLETED = "completed"
    #: Finished unsuccessfully (terminal).
    FAILED = "failed"
    #: Cancelled before it started (terminal).
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


class Job(Aggregate):
    """A background job: created, started, making progress, then completed, failed or cancelled."""

    TOPIC = "jobledger:Job"

    class Event(Aggregate.Event):
        TOPIC = "jobledger:Job.Event"
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "jobledger:Job.Created"
        job_type: str
        data_json: str
        total_items: int | None

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

    class Started(Event):
        TOPIC = "jobledger:Job.Started"

        def apply(self, job: Job) -> None:
            job.status = JobStatus.PROCESSING
            job.started_at = self.timestamp

    class ProgressUpdated(Event):
        TOPIC = "jobledger:Job.ProgressUpdated"
        processed_items: int
        total_items: int | None

        def apply(self, job: Job) -> None:
            job.processed_items = self.processed_items
            job.total_items = self.total_items

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
            job.status = JobStatus.COMPLETED
            job.result_json = self.result_json
            job.completed_at = self.timestamp

    class Failed(Event):
        TOPIC = "jobledger:Job.Failed"
        reason: str

        def apply(self, job: Job) -> None:
            job.status = JobStatus.FAILED
            job.failure_reason = self.reason
            job.completed_at = self.timestamp

    class Cancelled(Event):
        TOPIC = "jobledger:Job.Cancelled"
        reason: str | None

        def apply(self, job: Job) -> None:
            job.status = JobStatus.CANCELLED
            job.cancel_reason = self.reason
            job.completed_at = self.timestamp

    class Snapshot(AggregateSnapshot):
        """A job's state at one version, in plain JSON types."""

        TOPIC = "jobledger:Job.Snapshot"

        @classmethod
        def take(cls, aggregate: Any) -> Job.Snapshot:
            snapshot: Job.Snapshot = super().take(aggregate)
            state = snapshot.state
            state["status"] = str(state["status"])
            state["error_log"] = [
                [e.message, e.item, e.details_json, e.at] for e in state["error_log"]
            ]
            return snapshot

        def mutate(self, _: None) -> Job:
            job = super().mutate(None)
            assert isinstance(job, Job)
            job.status = JobStatus(job.status)
            job.error_log = [ErrorEntry(*fields) for fields in cast(list[list[Any]], job.error_log)]
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

    @classmethod
    def create(
        cls,
        *,
        job_id: UUID,
        job_type: str,
        data: Any,
        total_items: int | None,
        actor: str,
    ) -> Job:
        """Creates a pending job."""
        return cls._create(
            cls.Created,
            id=job_id,
            actor=checked_actor(actor),
            job_type=_text("type", job_type, MAX_TYPE_CHARS),
            data_json=_json_text("data", data, MAX_DATA_BYTES),
            total_items=None if total_items is None else _count("totalItems", total_items, 1),
        )

    def start(self, *, actor: str) -> None:
        """Starts a pending job."""
        actor = checked_actor(actor)
        self._require("start", JobStatus.PENDING)
        self.trigger_event(self.Started, actor=actor)

    def update_progress(
        self, processed_items: int, total_items: int | None = None, *, actor: str
    ) -> None:
        """Reports how many items a processing job has done, and optionally its new total."""
        actor = checked_actor(actor)
        processed_items = _count("processedItems", processed_items, 0)
        if total_items is not None:
            total_items = _count("totalItems", total_items, 1)
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
        self.trigger_event(
            self.ProgressUpdated, actor=actor, processed_items=processed_items, total_items=total
        )

    def log_error(
        self, message: str, item: str | None = None, details: Any = None, *, actor: str
    ) -> None:
        """Records an error a worker met; the job carries on."""
        actor = checked_actor(actor)
        message = _text("message", message, MAX_MESSAGE_CHARS)
        if item is not None:
            item = _text("item", item, MAX_ITEM_CHARS)
        details_json = (
            None if details is None else _json_text("details", details, MAX_DETAILS_BYTES)
        )
        self._require("log an error on", JobStatus.PENDING, JobStatus.PROCESSING)
        self.trigger_event(
            self.ErrorLogged, actor=actor, message=message, item=item, details_json=details_json
        )

    def complete(self, result: Any = None, *, actor: str) -> None:
        """Marks a processing job as completed, with an optional result."""
        actor = checked_actor(actor)
        result_json = None if result is None else _json_text("result", result, MAX_RESULT_BYTES)
        self._require("complete", JobStatus.PROCESSING)
        self.trigger_event(self.Completed, actor=actor, result_json=result_json)

    def fail(self, reason: str, *, actor: str) -> None:
        """Marks a pending or processing job as failed."""
        actor = checked_actor(actor)
        reason = _text("reason", reason, MAX_REASON_CHARS)
        self._require("fail", JobStatus.PENDING, JobStatus.PROCESSING)
        self.trigger_event(self.Failed, actor=actor, reason=reason)

    def cancel(self, reason: str | None = None, *, actor: str) -> None:
        """Cancels a job that has not started."""
        actor = checked_actor(actor)
        if reason is not None:
            reason = _text("reason", reason, MAX_REASON_CHARS)
        self._require("cancel", JobStatus.PENDING)
        self.trigger_event(self.Cancelled, actor=actor, reason=reason)

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
    return _text("actor", actor, MAX_ACTOR_CHARS)


def _text(field: str, value: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(field, "must be a string")
    if not value.strip():
        raise InvalidInputError(field, "must not be empty")
    if len(value) > max_chars:
        raise InvalidInputError(field, f"must be at most {max_chars} characters, got {len(value)}")
    if "\x00" in value:
        raise InvalidInputError(field, "must not contain NUL characters")
    return value


def _count(field: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, "must be an integer")
    if not minimum <= value <= MAX_ITEMS:
        raise InvalidInputError(field, f"must be between {minimum} and {MAX_ITEMS}, got {value}")
    return value


def _json_text(field: str, value: Any, max_bytes: int) -> str:
    """Returns ``value`` as compact JSON text, refusing what JSON cannot hold or what is too big."""
    _check_depth(field, value, MAX_JSON_DEPTH)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(field, f"must be JSON: {error}") from None
    size = len(text.encode())
    if size > max_bytes:
        raise InvalidInputError(field, f"must be at most {max_bytes} bytes as JSON, got {size}")
    return text


def _check_depth(field: str, value: Any, depth_left: int) -> None:
    if isinstance(value, dict | list | tuple):
        if depth_left == 0:
            raise InvalidInputError(field, f"must not nest deeper than {MAX_JSON_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            _check_depth(field, child, depth_left - 1)
