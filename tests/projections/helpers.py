"""Shared helpers for read-model tests: the oracle (jobs folded by the domain) and drivers."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.errors import JobConflictError
from domain.ledger import JobLedger
from projections import JobQuery, JobSummary, JobSummaryView
from projections.query import sort_key

ACTORS = ("alice", "bob", "carol")
TYPES = ("import", "export", "geocode")
WORKER = "worker-1"
#: Where a test clock starts (in the past: every job created at it is due at once).
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock a test moves by hand (the ledger reads it for every time-dependent command)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def clock_of(ledger: JobLedger) -> Clock:
    """The ledger's test clock, installed at :data:`T0` the first time."""
    if not isinstance(ledger.clock, Clock):
        ledger.clock = Clock()
    return ledger.clock


def folded(ledger: JobLedger, job_ids: Iterable[UUID]) -> dict[UUID, JobSummary]:
    """Each job's summary, folded by the domain from its events."""
    return {job_id: JobSummary.of(ledger.get_job(job_id)) for job_id in job_ids}


def brute_force(rows: Iterable[JobSummary], query: JobQuery) -> list[JobSummary]:
    """Every row the query selects, in its order (no paging)."""
    selected = [row for row in rows if query.matches(row)]
    return sorted(selected, key=sort_key, reverse=query.sort.descending)


def walk(view: JobSummaryView[Any], query: JobQuery) -> list[JobSummary]:
    """Every row of the query, page by page through the cursors."""
    page = view.query(query)
    rows = list(page.items)
    while page.next_cursor is not None:
        page = view.query(replace(query, cursor=page.next_cursor))
        rows += page.items
    return rows


def random_command(ledger: JobLedger, rng: random.Random, job_ids: list[UUID]) -> int | None:
    """Creates a job or drives a random one with a random command; the log position or None.

    Commands the job's status refuses raise and record nothing, exactly as in production. Most
    commands go to the latest jobs, which are the likeliest to be still running.
    """
    if not job_ids or rng.random() < 0.25:
        result = ledger.create_job(
            job_type=rng.choice(TYPES),
            data={"n": rng.randrange(100)},
            total_items=rng.choice((None, 1, 10, 250)),
            actor=rng.choice(ACTORS),
            priority=rng.choice((0, 0, 5, -3)),
            run_at=clock_of(ledger).now + timedelta(seconds=rng.choice((-60, 0, 0, 30))),
            max_attempts=rng.choice((1, 2, 3)),
        )
        job_ids.append(result.job.id)
        return result.position
    job_id = rng.choice(job_ids[-8:] if rng.random() < 0.7 else job_ids)
    job = ledger.get_job(job_id)
    clock = clock_of(ledger)
    choice = rng.randrange(12)
    try:
        if choice == 0:
            return ledger.start_job(job_id, actor=WORKER).position
        if choice in (1, 2):
            total = job.total_items or rng.choice((None, 20))
            processed = min(job.processed_items + rng.randrange(5), total or 10**6)
            return ledger.update_progress(job_id, processed, total, actor=WORKER).position
        if choice == 3:
            return ledger.log_error(job_id, f"error {rng.randrange(1000)}", actor=WORKER).position
        if choice == 4:
            return ledger.complete_job(job_id, {"ok": True}, actor=WORKER).position
        if choice == 5:
            retry_in = rng.choice((0.0, 30.0))
            return ledger.fail_job(
                job_id, "broken", actor=WORKER, retry=rng.random() < 0.7, retry_in_seconds=retry_in
            ).position
        if choice == 6:
            clock.advance(rng.choice((0, 10, 40)))
            return ledger.start_job(job_id, actor=WORKER, worker="w", lease_seconds=20).position
        if choice == 7:
            if not job.attempt:
                return None
            clock.advance(rng.choice((5, 15)))
            return ledger.heartbeat(job_id, job.attempt, actor=WORKER).position
        if choice == 8:
            if job.lease_expires_at is None:
                return None
            clock.now = max(clock.now, job.lease_expires_at)
            return ledger.expire_lease(job_id, job.attempt, job.lease_expires_at).position
        if choice == 9:
            return ledger.retry_job(job_id, rng.choice((None, 1)), actor=job.created_by).position
        if choice == 10:
            return ledger.cancel_job(job_id, actor=job.created_by, ask_running=False).position
        return ledger.cancel_job(job_id, actor=job.created_by).position
    except JobConflictError:
        return None


def job_ids_in(view: JobSummaryView[Any]) -> list[UUID]:
    return [row.id for row in view.rows()]
