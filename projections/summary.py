"""The ``job_summary`` row, its counts, and the fold that keeps both in step with the events.

:class:`SummaryChanges` is what the projection calls, once per event: each method changes one
job's row in memory and the per-status / per-type counts. A view loads the rows a batch of events
touches, lets the projection call these methods, then writes the changed rows, the count deltas and
the new log position in one transaction. Every view (memory, SQLite, PostgreSQL) shares this fold,
so they hold the same rows by construction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.job import Job, JobStatus, progress_of

STATUS = "status"
TYPE = "type"


@dataclass(slots=True)
class JobSummary:
    """One job as lists show it: the summary fields, without its data, result or error log."""

    id: UUID
    job_type: str
    status: JobStatus
    created_by: str
    total_items: int | None
    processed_items: int
    progress: int
    error_count: int
    #: The message of the newest error logged, if any.
    last_error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    version: int
    priority: int
    #: Not claimable before this instant.
    run_at: datetime
    #: The number of the latest attempt (0 before the first claim).
    attempt: int
    max_attempts: int
    #: When the running attempt's lease passes (None when no attempt holds one).
    lease_expires_at: datetime | None
    cancel_requested: bool

    @classmethod
    def of(cls, job: Job) -> JobSummary:
        """The summary of a job folded by the domain (the oracle that ``verify`` compares with)."""
        return cls(
            id=job.id,
            job_type=job.job_type,
            status=job.status,
            created_by=job.created_by,
            total_items=job.total_items,
            processed_items=job.processed_items,
            progress=job.progress,
            error_count=job.error_count,
            last_error=job.error_log[-1].message if job.error_log else None,
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
            cancel_requested=job.cancel_requested,
        )

    def copy(self) -> JobSummary:
        return JobSummary(
            self.id, self.job_type, self.status, self.created_by, self.total_items,
            self.processed_items, self.progress, self.error_count, self.last_error,
            self.created_at, self.started_at, self.completed_at, self.updated_at, self.version,
            self.priority, self.run_at, self.attempt, self.max_attempts, self.lease_expires_at,
            self.cancel_requested,
        )  # fmt: skip

    def differences(self, other: JobSummary) -> list[tuple[str, Any, Any]]:
        """The fields whose values differ, as ``(name, self's value, other's value)``."""
        return [
            (f.name, getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


@dataclass(frozen=True, slots=True)
class SummaryCounts:
    """How many jobs the view holds, per status and per type (kept by the projection)."""

    by_status: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @classmethod
    def of(cls, rows: Iterable[JobSummary]) -> SummaryCounts:
        """Counts computed from rows (``verify`` compares them with the kept counts)."""
        counts: Counter[tuple[str, str]] = Counter()
        for row in rows:
            counts[STATUS, row.status.value] += 1
            counts[TYPE, row.job_type] += 1
        return cls.from_triples((dimension, key, n) for (dimension, key), n in counts.items())

    @classmethod
    def from_triples(cls, counts: Iterable[tuple[str, str, int]]) -> SummaryCounts:
        """From ``(STATUS | TYPE, key, n)``: every status appears, a type only when n > 0."""
        by_status = dict.fromkeys((s.value for s in JobStatus), 0)
        by_type: dict[str, int] = {}
        for dimension, key, n in counts:
            if dimension == STATUS:
                by_status[key] = n
            elif n:
                by_type[key] = n
        return cls(by_status, dict(sorted(by_type.items())))


class ProjectionGapError(RuntimeError):
    """Raised when an event does not follow its job's row (a missing event or a missing row)."""


class SummaryChanges:
    """The row changes of one batch of events, folded in memory before the view writes them.

    Rows are keyed by ``UUID.int`` of their job id: ints hash and compare in C, UUIDs in Python,
    and a rebuild looks rows up several times per event.
    """

    __slots__ = ("count_deltas", "created", "loaded", "rows", "status_changed")

    def __init__(self, loaded: dict[int, JobSummary]) -> None:
        #: Rows as stored before this batch (the fold mutates them in place).
        self.loaded = loaded
        #: Rows this batch created or changed, in first-touched order.
        self.rows: dict[int, JobSummary] = {}
        #: Keys of rows this batch created (to insert rather than update).
        self.created: set[int] = set()
        #: Keys of stored rows whose status changed (their indexed columns need rewriting).
        self.status_changed: set[int] = set()
        #: ``(STATUS | TYPE, key) -> delta`` for the kept counts.
        self.count_deltas: Counter[tuple[str, str]] = Counter()

    def created_job(
        self,
        key: int,
        version: int,
        at: datetime,
        job_type: str,
        created_by: str,
        total_items: int | None,
        priority: int,
        run_at: datetime,
        max_attempts: int,
    ) -> None:
        """A job was created, pending until ``run_at``."""
        if key in self.rows or key in self.loaded:
            self._next(key, version)
            return
        if version != 1:
            raise ProjectionGapError(f"Job {UUID(int=key)} was created at version {version}.")
        self.rows[key] = JobSummary(
            UUID(int=key), job_type, JobStatus.PENDING, created_by, total_items, 0,
            progress_of(JobStatus.PENDING, 0, total_items), 0, None, at, None, None, at, version,
            priority, run_at, 0, max_attempts, None, False,
        )  # fmt: skip
        self.created.add(key)
        self.count_deltas[STATUS, JobStatus.PENDING.value] += 1
        self.count_deltas[TYPE, job_type] += 1

    def started(
        self,
        key: int,
        version: int,
        at: datetime,
        attempt: int,
        lease_expires_at: datetime | None,
    ) -> None:
        """A worker started an attempt, from no items done."""
        row = self._next(key, version)
        if row is not None:
            self._set_status(row, JobStatus.PROCESSING)
            row.started_at = at
            row.attempt = attempt
            row.lease_expires_at = lease_expires_at
            row.processed_items = 0
            row.progress = progress_of(row.status, 0, row.total_items)
            self._touch(row, version, at)

    def progressed(
        self,
        key: int,
        version: int,
        at: datetime,
        processed_items: int,
        total_items: int | None,
        lease_expires_at: datetime | None,
    ) -> None:
        """A worker reported progress (and maybe a new total), which also set the lease."""
        row = self._next(key, version)
        if row is not None:
            row.processed_items = processed_items
            row.total_items = total_items
            row.progress = progress_of(row.status, processed_items, total_items)
            row.lease_expires_at = lease_expires_at
            self._touch(row, version, at)

    def lease_extended(
        self, key: int, version: int, at: datetime, lease_expires_at: datetime
    ) -> None:
        """A heartbeat moved the running attempt's lease on."""
        row = self._next(key, version)
        if row is not None:
            row.lease_expires_at = lease_expires_at
            self._touch(row, version, at)

    def error_logged(self, key: int, version: int, at: datetime, message: str) -> None:
        """A worker reported an error; the job carries on."""
        row = self._next(key, version)
        if row is not None:
            row.error_count += 1
            row.last_error = message
            self._touch(row, version, at)

    def cancel_requested(self, key: int, version: int, at: datetime) -> None:
        """Someone asked the running attempt to stop."""
        row = self._next(key, version)
        if row is not None:
            row.cancel_requested = True
            self._touch(row, version, at)

    def attempt_failed(self, key: int, version: int, at: datetime, retry_at: datetime) -> None:
        """The running attempt failed; the next one is due at ``retry_at``."""
        self._retrying(key, version, at, retry_at)

    def lease_expired(
        self, key: int, version: int, at: datetime, retry_at: datetime | None
    ) -> None:
        """The running attempt's lease passed: retrying at ``retry_at``; when None, cancelled
        (a cancel was requested) or failed."""
        if retry_at is not None:
            self._retrying(key, version, at, retry_at)
            return
        row = self._next(key, version)
        if row is not None:
            status = JobStatus.CANCELLED if row.cancel_requested else JobStatus.FAILED
            self._end(row, version, at, status)

    def completed(self, key: int, version: int, at: datetime) -> None:
        """The job finished successfully."""
        self._finish(key, version, at, JobStatus.COMPLETED)

    def failed(self, key: int, version: int, at: datetime) -> None:
        """The job finished unsuccessfully."""
        self._finish(key, version, at, JobStatus.FAILED)

    def cancelled(self, key: int, version: int, at: datetime) -> None:
        """The job was cancelled (waiting, or its running attempt)."""
        self._finish(key, version, at, JobStatus.CANCELLED)

    def retried(
        self, key: int, version: int, at: datetime, max_attempts: int, run_at: datetime
    ) -> None:
        """A failed or cancelled job went back to pending, for more attempts."""
        row = self._next(key, version)
        if row is not None:
            self._set_status(row, JobStatus.PENDING)
            row.max_attempts = max_attempts
            row.run_at = run_at
            row.cancel_requested = False
            row.completed_at = None
            row.progress = progress_of(row.status, row.processed_items, row.total_items)
            self._touch(row, version, at)

    def _retrying(self, key: int, version: int, at: datetime, retry_at: datetime) -> None:
        row = self._next(key, version)
        if row is not None:
            self._set_status(row, JobStatus.RETRYING)
            row.run_at = retry_at
            row.lease_expires_at = None
            row.progress = progress_of(row.status, row.processed_items, row.total_items)
            self._touch(row, version, at)

    def _finish(self, key: int, version: int, at: datetime, status: JobStatus) -> None:
        row = self._next(key, version)
        if row is not None:
            self._end(row, version, at, status)

    def _end(self, row: JobSummary, version: int, at: datetime, status: JobStatus) -> None:
        self._set_status(row, status)
        row.completed_at = at
        row.lease_expires_at = None
        row.progress = progress_of(status, row.processed_items, row.total_items)
        self._touch(row, version, at)

    def _next(self, key: int, version: int) -> JobSummary | None:
        """The row the event at ``version`` changes, or None when the row already has it."""
        row = self.rows.get(key)
        if row is None:
            row = self.loaded.get(key)
            if row is None:
                raise ProjectionGapError(
                    f"Job {UUID(int=key)} has an event at version {version} but no row."
                )
            if version <= row.version:
                return None
            self.rows[key] = row
        elif version <= row.version:
            return None
        if version != row.version + 1:
            raise ProjectionGapError(
                f"Job {row.id} has an event at version {version} after version {row.version}."
            )
        return row

    def _set_status(self, row: JobSummary, status: JobStatus) -> None:
        self.count_deltas[STATUS, row.status.value] -= 1
        self.count_deltas[STATUS, status.value] += 1
        row.status = status
        key = row.id.int
        if key not in self.created:
            self.status_changed.add(key)

    @staticmethod
    def _touch(row: JobSummary, version: int, at: datetime) -> None:
        row.version = version
        row.updated_at = at
