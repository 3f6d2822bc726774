"""The projection and the view's transaction, on every backend.

Every kind of event gives the row the domain folds; an event applied twice (or a batch replayed,
whole or overlapping) changes nothing; events the projection does not know still move the
position; an event that does not follow its row fails the whole batch and writes nothing; two
writers applying the same events at once apply each exactly once.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from domain.job import Job
from domain.ledger import JobLedger
from projections import JobSummaryProjection, JobSummaryView, ProjectionRunner
from projections.summary import JobSummary, ProjectionGapError, SummaryCounts
from tests.projections.conftest import MakeView
from tests.projections.helpers import WORKER, clock_of, folded


class Gadget(Aggregate):
    """An aggregate the projection knows nothing about (like the users, or later ones)."""

    TOPIC = "tests:Gadget"

    class Created(Aggregate.Created):
        TOPIC = "tests:Gadget.Created"


def catch_up(ledger: JobLedger, view: JobSummaryView[Any]) -> int:
    return ProjectionRunner(ledger, view).catch_up()


def every_kind_of_event(ledger: JobLedger) -> list[Any]:
    """Jobs that between them record every kind of event (and every way each one lands)."""
    clock = clock_of(ledger)
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
    ledger.fail_job(c, "timeout", actor=WORKER, retry=False)
    d = ledger.create_job(job_type="import", actor="alice").job.id
    ledger.log_error(d, "queued twice", actor=WORKER)
    ledger.cancel_job(d, "not needed", actor="alice")
    e = ledger.create_job(job_type="geocode", total_items=3, actor="carol").job.id
    ledger.start_job(e, actor=WORKER)
    ledger.update_progress(e, 2, actor=WORKER)
    f = ledger.create_job(
        job_type="import", total_items=4, actor="alice", priority=5, max_attempts=2,
        run_at=clock.now - timedelta(minutes=5),
    ).job.id  # fmt: skip
    ledger.start_job(f, actor=WORKER, worker="w-1", lease_seconds=30)
    clock.advance(20)
    ledger.heartbeat(f, 1, actor=WORKER)
    ledger.update_progress(f, 2, attempt=1, lease_seconds=60, actor=WORKER)
    ledger.fail_job(f, "flaky", attempt=1, retry_in_seconds=5, actor=WORKER)
    clock.advance(5)
    ledger.start_job(f, actor=WORKER, worker="w-2", lease_seconds=10)
    lease = ledger.get_job(f).lease_expires_at
    assert lease is not None
    clock.advance(11)
    ledger.expire_lease(f, 2, lease)
    ledger.retry_job(f, actor="alice")
    g = ledger.create_job(job_type="geocode", actor="carol").job.id
    ledger.start_job(g, actor=WORKER, lease_seconds=10)
    ledger.cancel_job(g, "wrong file", actor="carol")
    lease = ledger.get_job(g).lease_expires_at
    assert lease is not None
    clock.advance(11)
    ledger.expire_lease(g, 1, lease)
    h = ledger.create_job(job_type="export", total_items=8, actor="bob").job.id
    ledger.start_job(h, actor=WORKER, lease_seconds=10)
    ledger.update_progress(h, 4, attempt=1, actor=WORKER)
    lease = ledger.get_job(h).lease_expires_at
    assert lease is not None
    clock.advance(11)
    ledger.expire_lease(h, 1, lease)
    i = ledger.create_job(job_type="import", actor="alice", priority=-2).job.id
    ledger.start_job(i, actor=WORKER, lease_seconds=30)
    ledger.cancel_job(i, "shutting down", attempt=1, actor=WORKER)
    j = ledger.create_job(job_type="export", actor="bob", max_attempts=1).job.id
    ledger.start_job(j, actor=WORKER, lease_seconds=30)
    ledger.cancel_job(j, actor="bob")
    return [a, b, c, d, e, f, g, h, i, j]


def test_the_events_cover_every_topic_the_projection_maps(ledger: JobLedger) -> None:
    every_kind_of_event(ledger)
    topics = {n.topic for n in ledger.recorder.select_notifications(start=1, limit=1000)}

    assert topics == JobSummaryProjection.topics


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
        "pending": 1, "processing": 2, "retrying": 1, "completed": 1, "failed": 2, "cancelled": 3,
    }  # fmt: skip
    assert view.counts().by_type == {"export": 4, "geocode": 2, "import": 4}
    e, f, g, h, j = (expected[job_ids[n]] for n in (4, 5, 6, 7, 9))
    assert (e.attempt, e.lease_expires_at, e.max_attempts, e.priority) == (1, None, 3, 0)
    assert (f.status, f.attempt, f.max_attempts, f.priority) == ("pending", 2, 4, 5)
    assert (f.completed_at, f.lease_expires_at, f.processed_items) == (None, None, 0)
    assert (g.status, g.cancel_requested, g.lease_expires_at) == ("cancelled", True, None)
    assert (h.status, h.processed_items, h.lease_expires_at) == ("retrying", 4, None)
    assert h.run_at > clock_of(ledger).now
    assert (j.status, j.cancel_requested, j.max_attempts) == ("processing", True, 1)
    assert j.lease_expires_at is not None


def test_each_event_alone_changes_the_stored_row_as_the_domain_folds(
    ledger: JobLedger, view: JobSummaryView[Any]
) -> None:
    """One event per batch: every kind of event updates a stored row, not only inserts."""
    every_kind_of_event(ledger)
    projection = JobSummaryProjection(ledger.mapper)

    for notification in ledger.recorder.select_notifications(start=1, limit=1000):
        view.apply([notification], projection)
        job_id = notification.originator_id
        job = ledger.get_job(job_id, version=notification.originator_version)  # type: ignore[arg-type]

        assert view.get(job_id) == JobSummary.of(job), notification.topic  # type: ignore[arg-type]


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
