"""Property: after any sequence of commands on many jobs, on every backend, every row equals the
fold of its job and every query equals a brute-force filter, sort and page over the folded jobs.

Examples accumulate in one store (the fixtures are per test, not per example), which only makes
the property stronger: it must hold for the whole history so far. For the same reason a failing
example is reported as found, not shrunk (shrinking would replay it on a store that has moved on).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.errors import JobConflictError
from domain.job import Job, JobStatus
from domain.ledger import JobLedger
from projections import JobQuery, JobSummaryView, ProjectionRunner, SortOrder
from projections.summary import JobSummary, SummaryCounts
from tests.projections.helpers import (
    ACTORS,
    TYPES,
    WORKER,
    brute_force,
    clock_of,
    folded,
    walk,
)

Command = tuple[str, int, int]

#: Command kinds, weighted towards long lives: many progress reports and errors, few endings.
KINDS = ("create", "start", "progress", "progress", "progress", "error", "error", "error",
         "complete", "fail", "cancel", "create", "claim", "heartbeat", "expire", "retry",
         "ask-cancel", "wait")  # fmt: skip
commands = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 99), st.integers(0, 999)),
    min_size=10,
    max_size=60,
)
queries = st.builds(
    JobQuery,
    statuses=st.lists(st.sampled_from(JobStatus), max_size=3, unique=True).map(tuple),
    job_type=st.none() | st.sampled_from(TYPES),
    created_by=st.none() | st.sampled_from(ACTORS),
    sort=st.sampled_from(SortOrder),
    limit=st.integers(1, 6),
    offset=st.integers(0, 8),
)


def run(ledger: JobLedger, job_ids: list[UUID], command: Command) -> None:
    kind, pick, argument = command
    clock = clock_of(ledger)
    if kind == "wait":
        clock.advance(argument % 40)
        return
    if kind == "create" or not job_ids:
        result = ledger.create_job(
            job_type=TYPES[pick % 3],
            total_items=(None, 1, 10, 250)[argument % 4],
            actor=ACTORS[argument % 3],
            priority=(0, 0, 3, -1)[pick % 4],
            run_at=clock.now + timedelta(seconds=(0, -30, 20)[argument % 3]),
            max_attempts=1 + argument % 3,
        )
        job_ids.append(result.job.id)
        return
    job_id = (
        job_ids[-1 - pick % 3] if pick < 70 and len(job_ids) >= 3 else job_ids[pick % len(job_ids)]
    )
    job = ledger.get_job(job_id)
    try:
        match kind:
            case "start":
                ledger.start_job(job_id, actor=WORKER)
            case "progress":
                total = job.total_items if argument % 5 else (job.total_items or 0) + argument
                processed = min(job.processed_items + argument % 7, total or 10**6)
                ledger.update_progress(job_id, processed, total or None, actor=WORKER)
            case "error":
                ledger.log_error(job_id, f"error {argument}", actor=WORKER)
            case "complete":
                ledger.complete_job(job_id, actor=WORKER)
            case "fail":
                ledger.fail_job(job_id, "broken", actor=WORKER, retry=argument % 4 != 0)
            case "claim":
                ledger.start_job(job_id, actor=WORKER, worker="w", lease_seconds=10 + argument % 50)
            case "heartbeat" if job.attempt:
                ledger.heartbeat(job_id, job.attempt, actor=WORKER)
            case "expire" if job.lease_expires_at is not None:
                clock.now = max(clock.now, job.lease_expires_at)
                ledger.expire_lease(job_id, job.attempt, job.lease_expires_at)
            case "retry":
                ledger.retry_job(job_id, actor=job.created_by)
            case "ask-cancel":
                ledger.cancel_job(job_id, actor=job.created_by)
            case "cancel":
                ledger.cancel_job(job_id, actor=job.created_by, ask_running=False)
    except JobConflictError:
        pass


def all_job_ids(ledger: JobLedger) -> list[UUID]:
    notifications = ledger.recorder.select_notifications(
        start=1, limit=10**6, topics=[Job.Created.TOPIC]
    )
    return [n.originator_id for n in notifications]  # type: ignore[misc]


@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(commands=commands, checks=st.lists(queries, min_size=1, max_size=4))
def test_rows_and_queries_equal_the_domains_fold(
    ledger: JobLedger,
    view: JobSummaryView[Any],
    runner: ProjectionRunner,
    commands: list[Command],
    checks: list[JobQuery],
) -> None:
    job_ids = all_job_ids(ledger)
    for command in commands:
        run(ledger, job_ids, command)
    assert runner.wait_for(ledger.head(), timeout=10.0)

    expected = folded(ledger, job_ids)
    assert {row.id: row for row in view.rows()} == expected
    assert view.counts() == SummaryCounts.of(expected.values())
    for query in checks:
        selected = brute_force(expected.values(), query)
        page = view.query(query)
        assert page.items == selected[query.offset : query.offset + query.limit]
        assert walk(view, replace(query, offset=0)) == selected
    now = clock_of(ledger).now
    rows = list(expected.values())
    for types in (None, TYPES[:1], TYPES[1:]):
        assert view.claimable(now, types, 5) == claimable(rows, now, types)[:5]
        assert view.next_run_at(types) == min(
            (r.run_at for r in rows if waiting(r, types)), default=None
        )
    leases = sorted(
        (r.lease_expires_at, r.id, r.attempt)
        for r in rows
        if r.status is JobStatus.PROCESSING and r.lease_expires_at is not None
    )
    assert view.expired_leases(now, 100) == [(i, a, t) for t, i, a in leases if t <= now]
    assert view.next_lease_expiry() == (leases[0][0] if leases else None)


def waiting(row: JobSummary, types: tuple[str, ...] | None) -> bool:
    return row.status in (JobStatus.PENDING, JobStatus.RETRYING) and (
        types is None or row.job_type in types
    )


def claimable(rows: list[JobSummary], now: datetime, types: tuple[str, ...] | None) -> list[UUID]:
    """Brute force: the due waiting rows, in the claim order."""
    due = [r for r in rows if waiting(r, types) and r.run_at <= now]
    due.sort(key=lambda r: (-r.priority, r.run_at, r.created_at, r.id))
    return [r.id for r in due]
