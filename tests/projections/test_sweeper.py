"""The lease sweeper on every store: passed leases end within the sweep interval, a lease
renewed meanwhile is left alone, and only the process whose runner is active sweeps."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from domain.job import JobStatus
from domain.ledger import JobLedger
from projections.sweeper import LeaseSweeper
from tests.conftest import on_backends
from tests.eventually import eventually
from tests.projections.conftest import MakeRunner, MakeView
from tests.projections.helpers import clock_of


def _claimed(ledger: JobLedger, lease: float = 30) -> UUID:
    job_id = ledger.create_job(job_type="a", actor="owner", max_attempts=2).job.id
    return ledger.start_job(job_id, actor="worker", lease_seconds=lease).job.id


def test_a_sweep_ends_the_passed_leases_and_only_those(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner
) -> None:
    clock = clock_of(ledger)
    view = make_view()
    runner = make_runner(on=ledger, into=view)
    short, long = _claimed(ledger, lease=5), _claimed(ledger, lease=60)
    renewed = _claimed(ledger, lease=10)
    clock.advance(9)
    ledger.heartbeat(renewed, 1, actor="worker")
    sweeper = LeaseSweeper(ledger, view, lambda: runner.active)
    runner.catch_up()
    clock.advance(2)
    assert sweeper.sweep() == 1
    statuses = {j: ledger.get_job(j).status for j in (short, long, renewed)}
    assert statuses == {
        short: JobStatus.RETRYING, long: JobStatus.PROCESSING, renewed: JobStatus.PROCESSING,
    }  # fmt: skip
    assert ledger.history(short)[-1].type == "LeaseExpired"


def test_the_sweeper_thread_rescues_a_job_soon_after_its_lease_passes(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner
) -> None:
    clock = clock_of(ledger)
    view = make_view()
    runner = make_runner(on=ledger, into=view)
    sweeper = LeaseSweeper(ledger, view, lambda: runner.active, interval=0.05).start()
    try:
        job_id = _claimed(ledger, lease=5)
        eventually(lambda: runner.active, what="the runner becoming active")
        clock.advance(5)
        eventually(
            lambda: ledger.get_job(job_id).status is JobStatus.RETRYING,
            what="the sweeper recording LeaseExpired",
        )
    finally:
        sweeper.stop()


@on_backends("sqlite", "postgresql")
def test_only_the_active_runners_process_sweeps_and_a_standby_takes_over(
    make_ledger: Callable[[], JobLedger], make_view: MakeView, make_runner: MakeRunner
) -> None:
    ledgers = [make_ledger(), make_ledger()]
    for ledger in ledgers:
        clock_of(ledger)
    views = [make_view(), make_view()]
    runners = [make_runner(on=lg, into=v) for lg, v in zip(ledgers, views, strict=True)]
    sweepers = [
        LeaseSweeper(lg, v, r.is_active, interval=0.05).start()
        for lg, v, r in zip(ledgers, views, runners, strict=True)
    ]
    try:
        eventually(lambda: any(r.active for r in runners), what="one runner becoming active")
        leader = next(i for i, r in enumerate(runners) if r.active)
        runners[leader].stop()
        standby = 1 - leader
        eventually(lambda: runners[standby].active, what="the standby taking the runner lock")
        job_id = _claimed(ledgers[standby], lease=5)
        for ledger in ledgers:
            ledger.clock.advance(6)  # type: ignore[attr-defined]
        eventually(
            lambda: ledgers[standby].get_job(job_id).status is JobStatus.RETRYING,
            what="the standby's sweeper rescuing the job",
        )
        assert sweepers[standby].expired == 1 and sweepers[leader].expired == 0
    finally:
        for sweeper in sweepers:
            sweeper.stop()
