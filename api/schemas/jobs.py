"""Job bodies: the commands' inputs, the full job, its summary in lists, and progress.

The workers' own bodies (claim, heartbeat, the batch of commands) are in ``api.schemas.workers``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field

from api.schemas.base import (
    TEXT,
    WHOLE_NUMBER,
    RequestModel,
    ResponseModel,
    Timestamp,
    UtcInstant,
    rfc3339,
)
from domain.job import (
    MAX_ITEM_CHARS,
    MAX_ITEMS,
    MAX_LEASE_SECONDS,
    MAX_MAX_ATTEMPTS,
    MAX_MESSAGE_CHARS,
    MAX_PRIORITY,
    MAX_REASON_CHARS,
    MAX_RETRY_IN_SECONDS,
    MAX_TYPE_CHARS,
    MAX_WORKER_CHARS,
    MIN_LEASE_SECONDS,
    MIN_MAX_ATTEMPTS,
    MIN_PRIORITY,
    AttemptOutcome,
    AttemptRecord,
    Job,
    JobStatus,
)
from projections.summary import JobSummary

JSON_VALUE = "Any JSON value."

_ATTEMPT = (
    "The attempt the caller runs (from its claim; at least 1). When given, the job must be "
    "processing in that attempt, else 409 lease-lost."
)
_LEASE = f"Lease length in seconds ({MIN_LEASE_SECONDS:g}-{MAX_LEASE_SECONDS:g})."
_BOUNDED_LEASE: dict[str, Any] = {
    "ge": MIN_LEASE_SECONDS, "le": MAX_LEASE_SECONDS, "allow_inf_nan": False,
}  # fmt: skip

#: The ``attempt`` a worker's command names: the fencing token.
_AttemptNumber = Annotated[int, Field(ge=1, le=MAX_ITEMS), WHOLE_NUMBER]
Attempt = Annotated[_AttemptNumber, Field(description=_ATTEMPT)]
OptionalAttempt = Annotated[_AttemptNumber | None, Field(description=_ATTEMPT)]
#: A number of items a job has (its total).
ItemCount = Annotated[int, Field(ge=1, le=MAX_ITEMS), WHOLE_NUMBER]
#: The lease a claim, start, heartbeat or progress grants, in seconds.
LeaseSeconds = Annotated[float, Field(**_BOUNDED_LEASE, description=_LEASE)]
OptionalLeaseSeconds = Annotated[float | None, Field(**_BOUNDED_LEASE, description=_LEASE)]
#: A worker's label, shown on the job while its attempt runs.
OptionalWorker = Annotated[
    str | None,
    Field(
        min_length=1,
        pattern=TEXT,
        max_length=MAX_WORKER_CHARS,
        description=f"A label for the worker (at most {MAX_WORKER_CHARS} characters); "
        "default: the caller's email.",
    ),
]
#: A count of attempts, as a job's creator or a retry grants them.
OptionalMaxAttempts = (
    Annotated[int, Field(ge=MIN_MAX_ATTEMPTS, le=MAX_MAX_ATTEMPTS), WHOLE_NUMBER] | None
)


class JobCreate(RequestModel):
    """A new job: its type, its data (any JSON, at most 32 KiB), and the items to process."""

    job_type: str = Field(
        alias="type",
        min_length=1,
        pattern=TEXT,
        max_length=MAX_TYPE_CHARS,
        description="The kind of job (1-100 characters), which workers claim by.",
    )
    data: Any = Field(default=None, description="Any JSON value, at most 32 KiB.")
    total_items: ItemCount | None = Field(
        default=None, description="How many items the job has, if known."
    )
    priority: Annotated[int, WHOLE_NUMBER] = Field(
        default=0,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="Higher runs first (-100 to 100).",
    )
    run_at: UtcInstant | None = Field(
        default=None,
        description="Not claimable before this time (RFC 3339 with a time zone); default: now. "
        "A past time orders the job earlier among equal priorities; one beyond what UTC holds "
        "(years 1-9999) is kept as the nearest instant it holds.",
    )
    max_attempts: OptionalMaxAttempts = Field(
        default=None,
        description="How many attempts the job gets (1-100); default: the server's "
        "JOBLEDGER_MAX_ATTEMPTS (3).",
    )


class StartRequest(RequestModel):
    """A start of one named job: its lease (none: never rescued) and the worker's label."""

    lease_seconds: OptionalLeaseSeconds = Field(
        default=None,
        description="Hold a lease of this many seconds (5-3600), renewed by heartbeats and "
        "progress; without it the attempt is never rescued.",
    )
    worker: OptionalWorker = None


class ProgressUpdate(RequestModel):
    """How many items are done, and optionally a new total; it also extends the lease."""

    processed_items: Annotated[int, WHOLE_NUMBER] = Field(
        ge=0, le=MAX_ITEMS, description="Items done so far; never less than last reported."
    )
    total_items: ItemCount | None = Field(
        default=None, description="A new total (at least processedItems)."
    )
    attempt: OptionalAttempt = None
    lease_seconds: OptionalLeaseSeconds = Field(
        default=None,
        description="Extend the lease by this many seconds (5-3600); default: the "
        "length last granted.",
    )


class ErrorReport(RequestModel):
    """An error a worker met; ``details`` is any JSON of at most 16 KiB."""

    message: str = Field(
        min_length=1,
        pattern=TEXT,
        max_length=MAX_MESSAGE_CHARS,
        description="What went wrong (1-2000 characters).",
    )
    item: str | None = Field(
        default=None,
        min_length=1,
        pattern=TEXT,
        max_length=MAX_ITEM_CHARS,
        description="Which item it was (1-1000 characters).",
    )
    details: Any = Field(default=None, description="Any JSON value, at most 16 KiB.")
    attempt: OptionalAttempt = None


class Completion(RequestModel):
    """The job's result, any JSON of at most 16 KiB."""

    result: Any = Field(default=None, description="Any JSON value, at most 16 KiB.")
    attempt: OptionalAttempt = None


class Failure(RequestModel):
    """Why the attempt failed, and whether the job may run again."""

    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON_CHARS,
        pattern=TEXT,
        description="Why (1-2000 characters).",
    )
    attempt: OptionalAttempt = None
    retry: bool = Field(
        default=True,
        strict=True,
        description="Run the job again after a backoff while attempts are left (true); false "
        "fails it for good.",
    )
    retry_in_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_RETRY_IN_SECONDS,
        allow_inf_nan=False,
        description="Seconds before the next attempt (0-86400), instead of the backoff.",
    )


class Cancellation(RequestModel):
    """Why the job is cancelled (optional); its worker names its attempt to cancel at once."""

    reason: str | None = Field(
        default=None,
        min_length=1,
        pattern=TEXT,
        max_length=MAX_REASON_CHARS,
        description="Why (1-2000 characters).",
    )
    attempt: OptionalAttempt = Field(
        default=None,
        description="The worker's own attempt: cancels it at once (workers must give it; "
        "409 lease-lost when it is not the running attempt).",
    )


class Retry(RequestModel):
    """How many more attempts a failed or cancelled job gets."""

    max_attempts: OptionalMaxAttempts = Field(
        default=None,
        description="More attempts to grant (1-100); default: as many as the job was created with.",
    )


class ErrorEntryOut(ResponseModel):
    """One logged error."""

    message: str
    item: str | None
    details: Any = Field(description=JSON_VALUE)
    at: Timestamp


class AttemptOut(ResponseModel):
    """One attempt at running the job."""

    attempt: int
    worker: str | None
    claimed_at: Timestamp
    ended_at: Timestamp | None
    outcome: AttemptOutcome | None = Field(description="Null while the attempt runs.")
    error: str | None = Field(description="The failure reason, for a failed attempt.")

    @classmethod
    def of(cls, record: AttemptRecord) -> AttemptOut:
        return cls(
            attempt=record.attempt,
            worker=record.worker,
            claimed_at=record.claimed_at,
            ended_at=record.ended_at,
            outcome=record.outcome,
            error=record.error,
        )


class JobOut(ResponseModel):
    """A job, in full."""

    id: UUID
    job_type: str = Field(serialization_alias="type")
    status: JobStatus
    data: Any = Field(description=JSON_VALUE)
    total_items: int | None
    processed_items: int
    progress: int
    error_count: int
    error_log: list[ErrorEntryOut] = Field(description="The newest 100 errors, oldest first.")
    result: Any = Field(description=JSON_VALUE)
    failure_reason: str | None
    created_by: str
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    updated_at: Timestamp
    version: int
    priority: int
    run_at: Timestamp = Field(description="Not claimable before this time.")
    attempt: int = Field(description="The latest attempt's number (0 before the first claim).")
    max_attempts: int
    lease_expires_at: Timestamp | None = Field(description="Null when no attempt holds a lease.")
    worker: str | None = Field(description="The running attempt's worker (null: none runs).")
    cancel_requested: bool
    attempts: list[AttemptOut] = Field(description="Every attempt, oldest first.")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            job_type=job.job_type,
            status=job.status,
            data=job.data,
            total_items=job.total_items,
            processed_items=job.processed_items,
            progress=job.progress,
            error_count=job.error_count,
            error_log=[
                ErrorEntryOut(message=e.message, item=e.item, details=e.details, at=e.at)
                for e in job.error_log
            ],
            result=job.result,
            failure_reason=job.failure_reason,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            updated_at=job.updated_at,
            version=job.version,
            priority=job.priority,
            run_at=job.run_at,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            lease_expires_at=job.lease_expires_at,
            worker=job.worker,
            cancel_requested=job.cancel_requested,
            attempts=[AttemptOut.of(record) for record in job.attempts],
        )


class ProgressOut(ResponseModel):
    """How far a job has got."""

    id: UUID
    status: JobStatus
    total_items: int | None
    processed_items: int
    progress: int

    @classmethod
    def of(cls, job: Job) -> ProgressOut:
        return cls(
            id=job.id,
            status=job.status,
            total_items=job.total_items,
            processed_items=job.processed_items,
            progress=job.progress,
        )


class JobSummaryOut(ResponseModel):
    """A job as lists show it: no data, result or error log."""

    id: UUID
    job_type: str = Field(serialization_alias="type")
    status: JobStatus
    total_items: int | None
    processed_items: int
    progress: int
    error_count: int
    last_error: str | None
    created_by: str
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    updated_at: Timestamp
    version: int
    priority: int
    run_at: Timestamp
    attempt: int
    max_attempts: int
    lease_expires_at: Timestamp | None
    cancel_requested: bool


def summary_json(row: JobSummary) -> dict[str, Any]:
    """``JobSummaryOut``'s JSON object of a row, built without a model (lists build many).

    ``tests/api/test_lists.py`` checks that it stays equal to the model's own serialisation.
    """
    return {
        "id": row.id,
        "type": row.job_type,
        "status": row.status,
        "totalItems": row.total_items,
        "processedItems": row.processed_items,
        "progress": row.progress,
        "errorCount": row.error_count,
        "lastError": row.last_error,
        "createdBy": row.created_by,
        "createdAt": rfc3339(row.created_at),
        "startedAt": None if row.started_at is None else rfc3339(row.started_at),
        "completedAt": None if row.completed_at is None else rfc3339(row.completed_at),
        "updatedAt": rfc3339(row.updated_at),
        "version": row.version,
        "priority": row.priority,
        "runAt": rfc3339(row.run_at),
        "attempt": row.attempt,
        "maxAttempts": row.max_attempts,
        "leaseExpiresAt": _optional_time(row.lease_expires_at),
        "cancelRequested": row.cancel_requested,
    }


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


class JobList(ResponseModel):
    """A page of jobs; pass ``nextCursor`` as ``cursor`` for the next page (null: no more)."""

    items: list[JobSummaryOut]
    limit: int
    offset: int
    next_cursor: str | None
