"""The projection and the view's transaction, on every backend.

Every kind of event gives the row the domain folds; an event applied twice (or a batch replayed,
whole or overlapping) changes nothing; events the projection does not know still move the
position; an event that does not follow its row fails the whole batch and writes nothing; two
writers applying the same events at once apply each exactly once.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from domain.job import Job
from domain.ledger import JobLedger
from projections import JobSummaryProjection, JobSummaryView, ProjectionRunner
from projections.summary import ProjectionGapError, SummaryCounts
from tests.projections.conftest import MakeView
from tests.projections.helpers import WORKER, folded


class Gadget(Aggregate):
    """An aggregate the projection knows nothing about (like the users, or later ones)."""

    TOPIC = "tests:Gadget"

    class Created(Aggregate.Created):
        TOPIC = "tests:Gadget.Created"


def catch_up(ledger: JobLedger, view: JobSummaryView[Any]) -> int:
    return ProjectionRunner(ledger, view).catch_up()


def every_kind_of_event(ledger: JobLedger) -> list[Any]:
    a = ledger.create_job(job_type="import", data={"f": 1}, total_items=10, actor="alice").job.id
    ledger.start_job(a, actor=WORKER)
    ledger.update_progress(a, 3, actor=WORKER)
    ledger.log_error(a, "row 7 is bad", "7", {"col": 2}, actor=WORKER)
    ledger.update_progress(a, 9, 40, actor=WORKER)
    ledger.log_error(a, "row 9 is bad", actor=WORKER)
    ledger.complete_job(a, {"rows": 40}, actor=WORKER)
    b = ledger.create_job(job_type="export", actor="bob").job.id
    ledger.fail_job(b, "no disk", actor=WORKER)
    c = ledger.create_job(job_type="export", total_items=5, actor="bob").job.id
    ledger.start_job(c, actor=WORKER)
    ledger.update_progress(c, 5, actor=WORKER)
    ledger.fail_job(c, "timeout", actor=WORKER)
    d = ledger.create_job(job_type="import", actor="alice").job.id
    ledger.log_error(d, "queued twice", actor=WORKER)
    ledger.cancel_job(d, "not needed", actor="alice")
    e = ledger.create_job(job_type="geocode", total_items=3, actor="carol").job.id
    ledger.start_job(e, actor=WORKER)
    ledger.update_progress(e, 2, actor=WORKER)
    return [a, b, c, d, e]


def snapshot(view: JobSummaryView[Any]) -> tuple[Any, ...]:
    return view.position(), list(view.rows()), view.counts()


def test_every_event_gives_the_row_the_domain_folds(
    ledger: JobLedger, view: JobSummaryView[Any]
) -> None:
    job_ids = every_kind_of_event(ledger)

    assert catch_up(ledger, view) == ledger.head()

    expected = folded(ledger, job_ids)
    assert {row.id: row for row in view.rows()} == expected
    assert view.get(job_ids[0]) == expected[job_ids[0]]
    assert expected[job_ids[0]].progress == 100
    assert expected[job_ids[0]].last_error == "row 9 is bad"
    assert expected[job_ids[4]].progress == 66
    assert view.get(uuid4()) is None
    assert view.counts() == SummaryCounts.of(expected.values())
    assert view.counts().by_status == {
        "pending": 0, "processing": 1, "completed": 1, "failed": 2, "cancelled": 1,
    }  # fmt: skip
    assert view.counts().by_type == {"export": 2, "geocode": 1, "import": 2}


def test_replayed_and_overlapping_batches_change_nothing(
    ledger: JobLedger, view: JobSummaryView[Any]
) -> None:
    every_kind_of_event(ledger)
    log = list(ledger.recorder.select_notifications(start=1, limit=1000))
    projection = JobSummaryProjection(ledger.mapper)
    view.apply(log[:7], projection)
    view.apply(log[3:12], projection)
    view.apply(log, projection)
    once = snapshot(view)

    view.apply(log, projection)
    view.apply(log[5:9], projection)
    for notification in log:
        view.apply([notification], projection)

    assert snapshot(view) == once
    assert once[0] == log[-1].id


def test_events_it_does_not_project_still_move_the_position(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    job_id = ledger.create_job(job_type="import", actor="alice").job.id
    recordings = ledger.save(Gadget())
    head = ledger.head()
    assert recordings[-1].notification.id == head
    assert recordings[-1].notification.topic == "tests:Gadget.Created"

    assert runner.wait_for(head, timeout=5.0)
    assert view.position() == head
    assert [row.id for row in view.rows()] == [job_id]


def test_an_event_without_its_row_fails_the_batch_and_writes_nothing(
    ledger: JobLedger, view: JobSummaryView[Any]
) -> None:
    every_kind_of_event(ledger)
    catch_up(ledger, view)
    before = snapshot(view)
    head = ledger.head()
    job_id = ledger.create_job(job_type="import", actor="alice").job.id
    created = ledger.recorder.select_notifications(start=head, limit=1, inclusive_of_start=False)
    stray = Notification(
        id=created[0].id + 1,
        originator_id=uuid4(),
        originator_version=2,
        topic=Job.Started.TOPIC,
        state=b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
        b'"actor":"w"}',
    )

    with pytest.raises(ProjectionGapError):
        view.apply([*created, stray], JobSummaryProjection())

    assert snapshot(view) == before
    assert view.get(job_id) is None


def test_two_writers_at_once_apply_each_event_exactly_once(
    backend: str, ledger: JobLedger, view: JobSummaryView[Any], make_view: MakeView
) -> None:
    job_ids = every_kind_of_event(ledger)
    log = list(ledger.recorder.select_notifications(start=1, limit=1000))
    views = [view, view if backend == "memory" else make_view()]
    barrier = threading.Barrier(len(views))
    errors: list[BaseException] = []

    def write(into: JobSummaryView[Any]) -> None:
        barrier.wait()
        try:
            for start in range(0, len(log), 3):
                into.apply(log[start : start + 3], JobSummaryProjection())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(v,)) for v in views]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    expected = folded(ledger, job_ids)
    assert {row.id: row for row in view.rows()} == expected
    assert view.counts() == SummaryCounts.of(expected.values())
    assert view.position() == log[-1].id
