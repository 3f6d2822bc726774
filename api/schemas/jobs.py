"""Job bodies: the commands' inputs, the full job, its summary in lists, and progress."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from api.schemas.base import RequestModel, ResponseModel, Timestamp, rfc3339
from domain.job import (
    MAX_ITEM_CHARS,
    MAX_ITEMS,
    MAX_MESSAGE_CHARS,
    MAX_REASON_CHARS,
    MAX_TYPE_CHARS,
    Job,
    JobStatus,
)
from projections.summary import JobSummary

JSON_VALUE = "Any JSON value."


class JobCreate(RequestModel):
    """A new job: its type, its data (any JSON, at most 32 KiB), and the items to process."""

    job_type: str = Field(alias="type", min_length=1, max_length=MAX_TYPE_CHARS)
    data: Any = Field(default=None, description=JSON_VALUE)
    total_items: int | None = Field(default=None, ge=1, le=MAX_ITEMS)


class ProgressUpdate(RequestModel):
    """How many items are done, and optionally a new total."""

    processed_items: int = Field(ge=0, le=MAX_ITEMS)
    total_items: int | None = Field(default=None, ge=1, le=MAX_ITEMS)


class ErrorReport(RequestModel):
    """An error a worker met; ``details`` is any JSON of at most 16 KiB."""

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    item: str | None = Field(default=None, min_length=1, max_length=MAX_ITEM_CHARS)
    details: Any = Field(default=None, description=JSON_VALUE)


class Completion(RequestModel):
    """The job's result, any JSON of at most 16 KiB."""

    result: Any = Field(default=None, description=JSON_VALUE)


class Failure(RequestModel):
    """Why the job failed."""

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class Cancellation(RequestModel):
    """Why the job is cancelled (optional)."""

    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON_CHARS)


class ErrorEntryOut(ResponseModel):
    """One logged error."""

    message: str
    item: str | None
    details: Any = Field(description=JSON_VALUE)
    at: Timestamp


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
    }


class JobList(ResponseModel):
    """A page of jobs; pass ``nextCursor`` as ``cursor`` for the next page (null: no more)."""

    items: list[JobSummaryOut]
    limit: int
    offset: int
    next_cursor: str | None
