"""The claim path's and the lease sweeper's reads, on every backend.

``claimable`` answers the due waiting jobs (pending or retrying) in the claim order: highest
priority, earliest ``run_at``, oldest, lowest id; filtered by type, leaving out ``skip``, at most
``limit``. ``next_run_at`` is the earliest ``run_at`` of the waiting jobs, due or not;
``expired_leases`` and ``next_lease_expiry`` look only at processing jobs that hold a lease.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.ledger import JobLedger
from projections import JobSummaryView, ProjectionRunner
from tests.projections.helpers import T0, WORKER, clock_of

SECOND = timedelta(seconds=1)


def catch_up(ledger: JobLedger, view: JobSummaryView[Any]) -> None:
    ProjectionRunner(ledger, view).catch_up()


@pytest.fixture
def waiting(ledger: JobLedger, view: JobSummaryView[Any]) -> dict[str, UUID]:
    """Waiting jobs of several priorities, due times and types, among jobs that are not."""
    clock = clock_of(ledger)

    def create(job_type: str, priority: int, run_in: float) -> UUID:
        return ledger.create_job(
            job_type=job_type, actor="alice", priority=priority, run_at=T0 + run_in * SECOND
        ).job.id

    jobs = {
        "a": create("import", 0, -60),
        "b": create("export", 5, 0),
        "c": create("import", 5, -10),
        "d": create("import", 0, -60),
        "e": create("report", 9, 30),
        "f": create("geocode", 1, -5),
        "g": create("import", 10, -100),
        "h": create("export", 10, -100),
    }
    ledger.start_job(jobs["f"], actor=WORKER)
    ledger.fail_job(jobs["f"], "flaky", actor=WORKER, retry_in_seconds=0)
    ledger.start_job(jobs["g"], actor=WORKER, lease_seconds=30)
    ledger.start_job(jobs["h"], actor=WORKER)
    ledger.complete_job(jobs["h"], actor=WORKER)
    assert clock.now == T0
    catch_up(ledger, view)
    assert view.get(jobs["f"]).status == "retrying"  # type: ignore[union-attr]
    return jobs


def ids(jobs: dict[str, UUID], names: str) -> list[UUID]:
    return [jobs[name] for name in names]


def test_due_jobs_come_by_priority_then_run_at_then_age(
    view: JobSummaryView[Any], waiting: dict[str, UUID]
) -> None:
    assert view.claimable(T0, None, 100) == ids(waiting, "cbfad")
    assert view.claimable(T0 - 20 * SECOND, None, 100) == ids(waiting, "ad")
    assert view.claimable(T0 + 30 * SECOND, None, 100) == ids(waiting, "ecbfad")
    assert view.claimable(T0 - 61 * SECOND, None, 100) == []


def test_claims_filter_by_type_leave_out_skipped_and_stop_at_the_limit(
    view: JobSummaryView[Any], waiting: dict[str, UUID]
) -> None:
    assert view.claimable(T0, ["import"], 100) == ids(waiting, "cad")
    assert view.claimable(T0, {"import", "geocode"}, 100) == ids(waiting, "cfad")
    assert view.claimable(T0, ("geocode", "export", "nothing"), 100) == ids(waiting, "bf")
    assert view.claimable(T0, (), 100) == []
    assert view.claimable(T0, None, 100, skip=ids(waiting, "cg")) == ids(waiting, "bfad")
    assert view.claimable(T0, ["import"], 100, skip=ids(waiting, "a")) == ids(waiting, "cd")
    assert view.claimable(T0, None, 2) == ids(waiting, "cb")
    assert view.claimable(T0, ("import", "geocode"), 2) == ids(waiting, "cf")


def test_next_run_at_is_the_earliest_waiting_run_at(
    ledger: JobLedger, view: JobSummaryView[Any], waiting: dict[str, UUID]
) -> None:
    assert view.next_run_at(None) == T0 - 60 * SECOND
    assert view.next_run_at(["export"]) == T0
    assert view.next_run_at(("report", "geocode")) == T0
    assert view.next_run_at(["report"]) == T0 + 30 * SECOND
    assert view.next_run_at(["nothing"]) is None
    assert view.next_run_at(()) is None

    for name in "abcdf":
        ledger.cancel_job(waiting[name], actor="alice")
    catch_up(ledger, view)
    assert view.next_run_at(None) == T0 + 30 * SECOND


def test_a_claim_or_a_retry_moves_a_job_in_and_out_of_the_claimable(
    ledger: JobLedger, view: JobSummaryView[Any], waiting: dict[str, UUID]
) -> None:
    clock = clock_of(ledger)
    ledger.start_job(waiting["c"], actor=WORKER, lease_seconds=30)
    ledger.fail_job(waiting["b"], "bad input", actor=WORKER)
    catch_up(ledger, view)
    assert view.claimable(T0, None, 100) == ids(waiting, "fad")

    clock.advance(1)
    ledger.retry_job(waiting["b"], actor="alice")
    catch_up(ledger, view)
    assert view.claimable(T0, None, 100) == ids(waiting, "fad")
    assert view.claimable(T0 + SECOND, None, 100) == ids(waiting, "bfad")


def test_expired_leases_come_earliest_first_with_their_attempt(
    ledger: JobLedger, view: JobSummaryView[Any]
) -> None:
    clock = clock_of(ledger)
    long = ledger.create_job(job_type="import", actor="alice").job.id
    short = ledger.create_job(job_type="export", actor="bob").job.id
    unleased = ledger.create_job(job_type="import", actor="alice").job.id
    ledger.start_job(long, actor=WORKER, lease_seconds=30)
    ledger.start_job(short, actor=WORKER, lease_seconds=10)
    ledger.start_job(unleased, actor=WORKER)
    catch_up(ledger, view)

    assert view.expired_leases(T0 + 9 * SECOND, 10) == []
    assert view.next_lease_expiry() == T0 + 10 * SECOND
    assert view.expired_leases(T0 + 10 * SECOND, 10) == [(short, 1, T0 + 10 * SECOND)]
    assert view.expired_leases(T0 + 60 * SECOND, 10) == [
        (short, 1, T0 + 10 * SECOND),
        (long, 1, T0 + 30 * SECOND),
    ]
    assert view.expired_leases(T0 + 60 * SECOND, 1) == [(short, 1, T0 + 10 * SECOND)]

    clock.advance(20)
    ledger.heartbeat(long, 1, actor=WORKER, lease_seconds=60)
    ledger.expire_lease(short, 1, T0 + 10 * SECOND)
    catch_up(ledger, view)
    assert view.expired_leases(T0 + 60 * SECOND, 10) == []
    assert view.next_lease_expiry() == T0 + 80 * SECOND

    clock.advance(15)
    ledger.start_job(short, actor=WORKER, lease_seconds=10)
    ledger.complete_job(long, actor=WORKER)
    catch_up(ledger, view)
    assert view.next_lease_expiry() == T0 + 45 * SECOND
    assert view.expired_leases(T0 + 45 * SECOND, 10) == [(short, 2, T0 + 45 * SECOND)]


def test_no_lease_means_no_expiry(ledger: JobLedger, view: JobSummaryView[Any]) -> None:
    job_id = ledger.create_job(job_type="import", actor="alice").job.id
    ledger.start_job(job_id, actor=WORKER)
    catch_up(ledger, view)

    assert view.next_lease_expiry() is None
    assert view.expired_leases(T0 + timedelta(days=365), 10) == []
