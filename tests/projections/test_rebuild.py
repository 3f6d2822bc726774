"""Rebuild and verify on every backend.

A rebuild produces exactly the table the live runner produced; run while commands keep coming,
it ends with ``verify`` clean and readers never see a half-built table; stopped half-way, it
leaves the live table intact; two rebuilds never run at once; ``verify`` reports differences.
"""

from __future__ import annotations

import random
import threading
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import Notification

from domain.job import Job
from domain.ledger import JobLedger
from projections import JobQuery, JobSummaryProjection, JobSummaryView, ProjectionRunner, rebuild
from projections import verify as verify_view
from projections.log import log_reader
from projections.rebuild import RebuildInProgressError, RebuildProgress
from tests.projections.helpers import random_command


def history(ledger: JobLedger, commands: int, seed: int = 1) -> list[Any]:
    rng = random.Random(seed)
    job_ids: list[Any] = []
    for _ in range(commands):
        random_command(ledger, rng, job_ids)
    return job_ids


def table(view: JobSummaryView[Any]) -> tuple[Any, ...]:
    return view.position(), list(view.rows()), view.counts()


def assert_caught_up_and_verified(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner, *, jobs: int
) -> None:
    """The live runner reaches the head, and every job's row equals the fold of its events."""
    head = ledger.head()
    assert runner.wait_for(head, timeout=10.0)
    report = verify_view(ledger, view, head)
    assert report.ok, report.differences
    assert report.jobs == jobs


def test_a_rebuild_produces_exactly_the_live_table(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    history(ledger, 300)
    assert runner.wait_for(ledger.head(), timeout=10.0)
    runner.stop()
    live = table(view)
    steps: list[RebuildProgress] = []

    report = rebuild(ledger, view, batch_size=50, on_progress=steps.append)

    assert table(view) == live
    assert report.position == ledger.head() == live[0]
    assert report.jobs == live[2].total
    assert report.events == ledger.head()
    assert len(steps) > 3
    assert steps[-1].position == steps[-1].head == ledger.head()
    assert verify_view(ledger, view).ok


def test_a_rebuild_while_commands_continue_ends_with_verify_clean(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    job_ids = history(ledger, 150)
    assert runner.wait_for(ledger.head(), timeout=10.0)
    floor = len(job_ids)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        rng = random.Random(2)
        while not stop.is_set():
            random_command(ledger, rng, job_ids)

    def read() -> None:
        try:
            while not stop.is_set():
                seen = view.counts().total
                assert seen >= floor, f"a reader saw {seen} jobs, fewer than {floor}"
                listed = len(view.query(JobQuery(limit=100)).items)
                assert listed >= min(100, floor), f"a reader listed only {listed} jobs"
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    try:
        rebuild(ledger, view, batch_size=40)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == []
    assert_caught_up_and_verified(ledger, view, runner, jobs=len(job_ids))


def test_a_rebuild_ends_even_when_writers_outpace_it(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    job_ids = history(ledger, 100)
    start_head = ledger.head()
    rng = random.Random(3)
    steps: list[RebuildProgress] = []

    def outpace(step: RebuildProgress) -> None:
        steps.append(step)
        if len(steps) < 100:
            for _ in range(30):
                random_command(ledger, rng, job_ids)

    rebuild(ledger, view, batch_size=10, on_progress=outpace)

    assert len(steps) == -(-start_head // 10)
    assert {step.head for step in steps} == {start_head}
    assert_caught_up_and_verified(ledger, view, runner, jobs=len(job_ids))


def test_a_swap_never_moves_the_live_position_back(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    """The runner may pass the head a rebuild read before its swap; the swap must follow it."""
    history(ledger, 80)
    stale_head = ledger.head()
    history(ledger, 40, seed=2)
    assert runner.wait_for(ledger.head(), timeout=10.0)
    runner.stop()
    live = table(view)
    shadow = view.create_shadow()
    try:
        view.finish_shadow()
        position = view.swap_in(
            shadow, log_reader(ledger.recorder), JobSummaryProjection(), up_to=stale_head
        )
    finally:
        shadow.close()

    assert position == live[0] > stale_head
    assert table(view) == live


def test_an_interrupted_rebuild_leaves_the_live_table_intact(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    history(ledger, 200)
    assert runner.wait_for(ledger.head(), timeout=10.0)
    runner.stop()
    live = table(view)

    def interrupt(step: RebuildProgress) -> None:
        if step.events >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rebuild(ledger, view, batch_size=25, on_progress=interrupt)

    assert table(view) == live
    rebuild(ledger, view, batch_size=25)
    assert table(view) == live


def test_two_rebuilds_never_run_at_once(ledger: JobLedger, view: JobSummaryView[Any]) -> None:
    history(ledger, 20)
    with view.rebuild_lock() as held:
        assert held
        with pytest.raises(RebuildInProgressError):
            rebuild(ledger, view)
    rebuild(ledger, view)
    assert verify_view(ledger, view).ok


def test_verify_reports_rows_that_differ_or_are_missing(
    ledger: JobLedger, view: JobSummaryView[Any]
) -> None:
    job_ids = history(ledger, 60)
    ProjectionRunner(ledger, view).catch_up()
    assert verify_view(ledger, view).ok
    forged_job = job_ids[0]
    version = ledger.get_job(forged_job).version
    forged = Notification(
        id=ledger.head() + 1,
        originator_id=forged_job,
        originator_version=version + 1,
        topic=Job.ErrorLogged.TOPIC,
        state=b'{"timestamp":{"_type_":"datetime_iso","_data_":"2030-01-01T00:00:00+00:00"},'
        b'"actor":"x","message":"forged","item":null,"details_json":null}',
    )
    view.apply([forged], JobSummaryProjection())
    unprojected = ledger.create_job(job_type="late", actor="a").job.id

    report = verify_view(ledger, view)

    assert not report.ok
    text = "\n".join(report.differences)
    assert f"{forged_job}: version is {version + 1} in the row, {version} in the job" in text
    assert f"{forged_job}: last_error is 'forged' in the row" in text
    assert f"{unprojected}: no row" in text
    assert str(uuid4()) not in text
