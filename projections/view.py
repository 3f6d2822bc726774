"""The ``job_summary`` view interface, shared by the memory, SQLite and PostgreSQL views.

A view holds one row per job, the per-status and per-type counts, and the log position (the
notification id of the last event applied). :meth:`JobSummaryView.apply` projects a batch of
events in **one transaction**: it locks and reads the position, skips the events at or below it
(so a replay changes nothing), folds the rest into the rows they touch, and writes the rows, the
count deltas and the new position together.

Rebuilds write into a *shadow* view (the same store, other tables) and :meth:`swap_in` replaces
the live tables with it atomically, after catching it up with the log under the live view's write
lock: readers never see a half-built table, and an interrupted rebuild leaves the live one intact.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import Notification

from projections.locks import ExclusiveLock
from projections.log import Entry, ReadLog, read_until
from projections.log import entries as as_entries
from projections.projection import JobSummaryProjection
from projections.query import CursorCodec, JobPage, JobQuery
from projections.summary import JobSummary, SummaryChanges, SummaryCounts

LIVE_NAME = "job_summary"
SHADOW_NAME = "job_summary_shadow"
#: Rows a shadow keeps in memory while it is rebuilt (it is their only writer).
SHADOW_CACHE_ROWS = 100_000

Tx = TypeVar("Tx")


class JobSummaryView(ABC, Generic[Tx]):
    """The job_summary read model in one store: rows, kept counts and the position they reflect."""

    #: Seconds between looks at the stored position while waiting for another process's runner
    #: (None: every write happens in this process and wakes the waiters itself).
    poll_interval: float | None = None
    #: Whether a read is work in this process only (no network round trip, never waiting for
    #: a writer): an event loop runs it itself rather than hand it to a thread.
    reads_in_process = False

    def __init__(self, name: str = LIVE_NAME) -> None:
        self.name = name
        self._seen = 0
        self._seen_changed = threading.Condition()
        self._cache: dict[int, JobSummary] | None = {} if name == SHADOW_NAME else None

    # Writing.

    def apply(
        self, batch: Sequence[Entry] | Sequence[Notification], projection: JobSummaryProjection
    ) -> int:
        """Projects a batch of log entries (oldest first) in one transaction; returns the position.

        Takes :data:`projections.log.Entry` tuples or the library's ``Notification`` objects.
        """
        entries = cast(Sequence[Entry], batch)
        if batch and not isinstance(batch[0], tuple):
            entries = as_entries(cast(Sequence[Notification], batch))
        try:
            with self._write() as tx:
                position = self._apply_in(tx, entries, projection)
        except BaseException:
            self._cache = None if self._cache is None else {}
            raise
        self.observe(position)
        return position

    def _apply_in(self, tx: Tx, entries: Sequence[Entry], projection: JobSummaryProjection) -> int:
        topics = projection.topics
        keys = {e[1] for e in entries if e[3] in topics}
        cache = self._cache
        if cache is None:
            position, rows = self._begin_batch(tx, keys)
        else:
            position, rows = self._begin_batch(tx, keys.difference(cache))
            rows.update((k, cache[k]) for k in keys if k in cache)
        fresh = _after(entries, position)
        if not fresh:
            return position
        changes = SummaryChanges(rows)
        for entry in fresh:
            projection.project(entry, changes)
        new_position = fresh[-1][0]
        self._finish_batch(tx, changes, new_position)
        if cache is not None:
            if len(cache) + len(changes.rows) > SHADOW_CACHE_ROWS:
                cache.clear()
            cache.update(changes.rows)
        return new_position

    def _begin_batch(self, tx: Tx, keys: set[int]) -> tuple[int, dict[int, JobSummary]]:
        """Locks and reads the position, then loads the stored rows of these jobs."""
        position = self._lock_position(tx)
        return position, self._load(tx, keys) if keys else {}

    def _finish_batch(self, tx: Tx, changes: SummaryChanges, position: int) -> None:
        """Writes the changed rows, the count deltas and the new position."""
        self._store(tx, changes)
        self._set_position(tx, position)

    @abstractmethod
    def _write(self) -> AbstractContextManager[Tx]:
        """A write transaction (serialised with every other writer of this view)."""

    @abstractmethod
    def _lock_position(self, tx: Tx) -> int:
        """Reads this view's position, locking it until the transaction ends."""

    @abstractmethod
    def _load(self, tx: Tx, keys: set[int]) -> dict[int, JobSummary]:
        """The stored rows of these jobs (by ``UUID.int``; those that exist), as fresh objects."""

    @abstractmethod
    def _store(self, tx: Tx, changes: SummaryChanges) -> None:
        """Writes the changed rows and the count deltas."""

    @abstractmethod
    def _set_position(self, tx: Tx, position: int) -> None:
        """Records the new position (and tells other processes' waiters, where it can)."""

    # Reading.

    @abstractmethod
    def position(self) -> int:
        """The notification id of the last event applied (0 before any)."""

    @abstractmethod
    def get(self, job_id: UUID) -> JobSummary | None:
        """The row of one job, or None."""

    @abstractmethod
    def query(self, query: JobQuery) -> JobPage:
        """One page of jobs; raises InvalidInputError for a malformed or foreign cursor."""

    @abstractmethod
    def counts(self) -> SummaryCounts:
        """How many jobs, per status and per type (kept by the projection, no scan)."""

    @abstractmethod
    def claimable(
        self,
        now: datetime,
        types: Collection[str] | None,
        limit: int,
        skip: Collection[UUID] = (),
    ) -> list[UUID]:
        """Ids of at most ``limit`` jobs a worker may claim: pending or retrying, due by ``now``,
        of one of ``types`` (None: any type; an empty collection: none), not in ``skip``;
        highest priority first, then earliest ``run_at``, oldest, lowest id."""

    @abstractmethod
    def next_run_at(self, types: Collection[str] | None) -> datetime | None:
        """The earliest ``run_at`` of the pending or retrying jobs of ``types``, or None."""

    @abstractmethod
    def expired_leases(self, now: datetime, limit: int) -> list[tuple[UUID, int, datetime]]:
        """``(id, attempt, lease_expires_at)`` of at most ``limit`` processing jobs whose lease
        passed by ``now``, earliest lease first."""

    @abstractmethod
    def next_lease_expiry(self) -> datetime | None:
        """The earliest lease of a processing job, or None."""

    @abstractmethod
    def rows(self) -> Iterator[JobSummary]:
        """Every row, by job id (streamed)."""

    @abstractmethod
    def recount(self) -> tuple[SummaryCounts, SummaryCounts]:
        """The kept counts and the counts of the rows, read at one instant (for ``verify``)."""

    @property
    @abstractmethod
    def cursor_codec(self) -> CursorCodec:
        """Signs cursors with this view's secret key."""

    # Read-your-writes.

    def wait_for(self, position: int, timeout: float = 2.0, *, local: bool = False) -> bool:
        """Waits until the view has applied ``position``; returns False after ``timeout`` seconds.

        Writes by a runner in this process wake the waiters at once; another process's runner
        is seen through the store (PostgreSQL: a notification; SQLite: a cheap poll). ``local``
        says the active runner is this process's: the store is then not looked at at all.
        """
        if self._seen >= position:
            return True
        deadline = time.monotonic() + timeout
        poll = None if local else self.poll_interval
        if not local:
            self._watch()
            self.observe(self.position())
        while self._seen < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._seen_changed:
                if self._seen < position:
                    self._seen_changed.wait(remaining if poll is None else min(remaining, poll))
            if poll is not None and self._seen < position:
                self.observe(self.position())
        return True

    @property
    def observed(self) -> int:
        """The position this process knows the view has reached (no store read)."""
        return self._seen

    def observe(self, position: int) -> None:
        """Records that the view has applied the log up to ``position``, waking its waiters."""
        if position > self._seen:
            with self._seen_changed:
                if position > self._seen:
                    self._seen = position
                    self._seen_changed.notify_all()

    def _watch(self) -> None:
        """Starts following other processes' progress, if the store can tell (PostgreSQL)."""

    # Runners and rebuilds.

    @abstractmethod
    def runner_lock(self) -> ExclusiveLock:
        """The lock that makes one runner active per view and store."""

    @abstractmethod
    def rebuild_lock(self) -> ExclusiveLock:
        """The lock that lets one rebuild run at a time."""

    @abstractmethod
    def runner_holder(self) -> str | None:
        """Who holds the runner lock (host, pid, since), or None when no runner is active."""

    @abstractmethod
    def create_shadow(self) -> JobSummaryView[Tx]:
        """A fresh, empty shadow view to rebuild into (dropping any an earlier rebuild left)."""

    @abstractmethod
    def swap_in(
        self,
        shadow: JobSummaryView[Tx],
        read_log: ReadLog,
        projection: JobSummaryProjection,
        up_to: int,
    ) -> int:
        """Catches the shadow up with the log and makes it the live view, atomically.

        The shadow is caught up to ``up_to`` or to the live view's position, whichever is further:
        a live position never moves back, so the runner's next batch leaves no gap. Returns the
        position of the new live view. Runs under the live view's write lock, so the runner waits
        meanwhile and then carries on from the new position.
        """

    def finish_shadow(self) -> None:
        """Builds what a shadow defers until its rows are in (indexes), before the swap."""

    def close(self) -> None:
        """Releases the view's connections."""

    def __enter__(self) -> JobSummaryView[Tx]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def catch_up_in(
    view: JobSummaryView[Any],
    tx: Any,
    read_log: ReadLog,
    projection: JobSummaryProjection,
    batch_size: int,
    up_to: int,
) -> int:
    """Applies the events after the view's position, up to ``up_to``, inside the open ``tx``."""
    read = read_until(read_log, up_to)
    position = view._lock_position(tx)
    while batch := read(position, batch_size):
        position = view._apply_in(tx, batch, projection)
    return position


def _after(entries: Sequence[Entry], position: int) -> Sequence[Entry]:
    if not entries or entries[0][0] > position:
        return entries
    return [e for e in entries if e[0] > position]
