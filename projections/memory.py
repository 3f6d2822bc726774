"""The in-memory view, for the ``memory://`` store: rows in a dict, guarded by one lock.

It lives and dies with its process, like the in-memory event store it follows. Queries filter
and sort the rows on every call: fine for tests and demos, not meant for millions of jobs.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

from domain.job import JobStatus
from projections.locks import ExclusiveLock, MemoryLock
from projections.log import ReadLog
from projections.projection import JobSummaryProjection
from projections.query import CursorCodec, JobPage, JobQuery, next_cursor, sort_key
from projections.summary import JobSummary, SummaryChanges, SummaryCounts
from projections.view import (
    LIVE_NAME,
    SHADOW_NAME,
    JobSummaryView,
    catch_up_in,
)

SWAP_BATCH = 500
WAITING = (JobStatus.PENDING, JobStatus.RETRYING)


class MemorySummaryView(JobSummaryView[None]):
    """The job_summary view in this process's memory."""

    reads_in_process = True

    def __init__(self, name: str = LIVE_NAME, cursor_key: bytes | None = None) -> None:
        super().__init__(name)
        self._cache = None
        self._lock = threading.RLock()
        self._rows: dict[int, JobSummary] = {}
        self._counts: Counter[tuple[str, str]] = Counter()
        self._position = 0
        self._codec = CursorCodec(cursor_key or secrets.token_bytes(32))
        self._runner_lock = MemoryLock()
        self._rebuild_lock = MemoryLock()

    @contextmanager
    def _write(self) -> Iterator[None]:
        with self._lock:
            yield None

    def _lock_position(self, tx: None) -> int:
        return self._position

    def _load(self, tx: None, keys: set[int]) -> dict[int, JobSummary]:
        return {k: self._rows[k].copy() for k in keys if k in self._rows}

    def _store(self, tx: None, changes: SummaryChanges) -> None:
        self._rows.update(changes.rows)
        self._counts.update(changes.count_deltas)

    def _set_position(self, tx: None, position: int) -> None:
        self._position = position

    def position(self) -> int:
        return self._position

    def get(self, job_id: UUID) -> JobSummary | None:
        with self._lock:
            row = self._rows.get(job_id.int)
            return None if row is None else row.copy()

    def query(self, query: JobQuery) -> JobPage:
        after = self.cursor_codec.decode(query)
        descending = query.sort.descending
        with self._lock:
            rows = [r for r in self._rows.values() if query.matches(r)]
            if after is not None:
                key = (after.created_at, after.id)
                rows = [r for r in rows if (sort_key(r) < key if descending else sort_key(r) > key)]
            rows.sort(key=sort_key, reverse=descending)
            page = [r.copy() for r in rows[query.offset : query.offset + query.limit + 1]]
        return next_cursor(self.cursor_codec, query, page)

    def counts(self) -> SummaryCounts:
        with self._lock:
            return SummaryCounts.from_triples((d, k, n) for (d, k), n in self._counts.items())

    def claimable(
        self,
        now: datetime,
        types: Collection[str] | None,
        limit: int,
        skip: Collection[UUID] = (),
    ) -> list[UUID]:
        skipped = {job_id.int for job_id in skip}
        with self._lock:
            due = [
                r
                for key, r in self._rows.items()
                if r.status in WAITING
                and r.run_at <= now
                and (types is None or r.job_type in types)
                and key not in skipped
            ]
        due.sort(key=lambda r: (-r.priority, r.run_at, r.created_at, r.id))
        return [r.id for r in due[:limit]]

    def next_run_at(self, types: Collection[str] | None) -> datetime | None:
        with self._lock:
            return min(
                (
                    r.run_at
                    for r in self._rows.values()
                    if r.status in WAITING and (types is None or r.job_type in types)
                ),
                default=None,
            )

    def expired_leases(self, now: datetime, limit: int) -> list[tuple[UUID, int, datetime]]:
        with self._lock:
            leases = [
                (r.lease_expires_at, r.id, r.attempt)
                for r in self._rows.values()
                if r.status is JobStatus.PROCESSING
                and r.lease_expires_at is not None
                and r.lease_expires_at <= now
            ]
        leases.sort()
        return [(job_id, attempt, expires) for expires, job_id, attempt in leases[:limit]]

    def next_lease_expiry(self) -> datetime | None:
        with self._lock:
            return min(
                (
                    r.lease_expires_at
                    for r in self._rows.values()
                    if r.status is JobStatus.PROCESSING and r.lease_expires_at is not None
                ),
                default=None,
            )

    def rows(self) -> Iterator[JobSummary]:
        with self._lock:
            rows = sorted((r.copy() for r in self._rows.values()), key=lambda r: r.id)
        return iter(rows)

    def recount(self) -> tuple[SummaryCounts, SummaryCounts]:
        with self._lock:
            return self.counts(), SummaryCounts.of(self._rows.values())

    @property
    def cursor_codec(self) -> CursorCodec:
        return self._codec

    def runner_lock(self) -> ExclusiveLock:
        return self._runner_lock

    def rebuild_lock(self) -> ExclusiveLock:
        return self._rebuild_lock

    def runner_holder(self) -> str | None:
        return self._runner_lock.holder

    def create_shadow(self) -> MemorySummaryView:
        return MemorySummaryView(SHADOW_NAME, self._codec.key)

    def swap_in(
        self,
        shadow: JobSummaryView[None],
        read_log: ReadLog,
        projection: JobSummaryProjection,
        up_to: int,
    ) -> int:
        assert isinstance(shadow, MemorySummaryView)
        with self._lock, shadow._lock:
            up_to = max(up_to, self._position)
            position = catch_up_in(shadow, None, read_log, projection, SWAP_BATCH, up_to)
            self._rows, self._counts = shadow._rows, shadow._counts
            self._position = position
            shadow._rows, shadow._counts = {}, Counter()
        self.observe(position)
        return position
