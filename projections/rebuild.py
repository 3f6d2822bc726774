"""Rebuild: replay the whole log into a shadow of the view, then swap it in atomically.

The shadow is filled in batches (``batch_size`` events per transaction) while the live view keeps
serving and its runner keeps following; the shadow's secondary indexes are built once its rows are
in; the swap catches the shadow up with the log under the live view's write lock and renames it
into place. Each pass stops at the head of the log as it was when the pass began (the swap goes
on to the live view's position if that is further): writers that append faster than the shadow
fills must not keep a rebuild going for ever, and the live runner projects whatever comes after
the swap. A rebuild that stops half-way leaves the live view as it was (the next rebuild drops
the half-built shadow). One rebuild runs at a time per view and store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.ledger import JobLedger
from projections.log import log_reader, read_until
from projections.projection import JobSummaryProjection
from projections.view import JobSummaryView

DEFAULT_BATCH_SIZE = 500


class RebuildInProgressError(RuntimeError):
    """Raised when another rebuild of the same view is running."""


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    """How far a rebuild has got: events replayed, and the log positions reached and to reach."""

    events: int
    position: int
    head: int


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did."""

    events: int
    jobs: int
    position: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def rebuild(
    ledger: JobLedger,
    view: JobSummaryView[Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[RebuildProgress], None] | None = None,
) -> RebuildReport:
    """Rebuilds the view from the whole log; raises RebuildInProgressError if one is running."""
    projection = JobSummaryProjection(ledger.mapper)
    read_log = log_reader(ledger.recorder)

    started = time.perf_counter()
    lock = view.rebuild_lock()
    try:
        if not lock.acquire():
            raise RebuildInProgressError("Another rebuild of the job_summary view is running.")
        shadow = view.create_shadow()
        try:
            events = position = 0
            head = ledger.head()
            read_to_head = read_until(read_log, head)
            while batch := read_to_head(position, batch_size):
                position = shadow.apply(batch, projection)
                events += len(batch)
                if on_progress is not None:
                    on_progress(RebuildProgress(events, position, head))
            view.finish_shadow()
            position = view.swap_in(shadow, read_log, projection, up_to=ledger.head())
        finally:
            shadow.close()
    finally:
        lock.release()
    return RebuildReport(
        events=events,
        jobs=view.counts().total,
        position=position,
        seconds=time.perf_counter() - started,
    )
