"""A job's past: its history and its state at any version or instant, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.errors import InvalidInputError, JobNotFoundError
from domain.job import Job, JobStatus
from domain.ledger import JobLedger
from tests.domain.helpers import ACTOR, WORKER


def _observable(job: Job) -> tuple[object, ...]:
    return (
        job.version,
        job.status,
        job.processed_items,
        job.total_items,
        job.progress,
        job.error_count,
        [e.message for e in job.error_log],
        job.updated_at,
    )


def _drive(ledger: JobLedger) -> tuple[Job, list[Job]]:
    """Runs a lifecycle and returns the job and its state right after each command."""
    results = [ledger.create_job(job_type="export", data={"q": 1}, total_items=4, actor=ACTOR)]
    job_id = results[0].job.id
    results.append(ledger.log_error(job_id, "slow disk", details={"ms": 900}, actor=WORKER))
    results.append(ledger.start_job(job_id, actor=WORKER))
    for n in (1, 2, 4):
        results.append(ledger.update_progress(job_id, n, actor=WORKER))
    results.append(ledger.complete_job(job_id, {"url": "s3://x"}, actor="worker-2"))
    return results[-1].job, [r.job for r in results]


def test_history_lists_every_event_with_its_actor_and_data(ledger: JobLedger) -> None:
    job, _ = _drive(ledger)
    history = ledger.history(job.id)
    assert [(h.version, h.type, h.actor) for h in history] == [
        (1, "Created", ACTOR),
        (2, "ErrorLogged", WORKER),
        (3, "Started", WORKER),
        (4, "ProgressUpdated", WORKER),
        (5, "ProgressUpdated", WORKER),
        (6, "ProgressUpdated", WORKER),
        (7, "Completed", "worker-2"),
    ]
    created = dict(history[0].data)
    assert created.pop("run_at") <= job.created_at
    assert created == {
        "job_type": "export", "data": {"q": 1}, "total_items": 4, "priority": 0, "max_attempts": 3,
    }  # fmt: skip
    assert history[1].data == {"message": "slow disk", "item": None, "details": {"ms": 900}}
    assert history[6].data == {"result": {"url": "s3://x"}}
    assert [h.at for h in history] == sorted(h.at for h in history)
    assert history[-1].at == job.updated_at


def test_history_pages_concatenate_to_the_whole(ledger: JobLedger) -> None:
    job, _ = _drive(ledger)
    whole = ledger.history(job.id)
    pages = [ledger.history(job.id, from_version=v, limit=3) for v in (1, 4, 7)]
    assert [h for page in pages for h in page] == whole
    assert ledger.history(job.id, from_version=8) == []


def test_history_refuses_unknown_jobs_and_bad_pages(ledger: JobLedger) -> None:
    with pytest.raises(JobNotFoundError):
        ledger.history(uuid4())
    with pytest.raises(JobNotFoundError):
        ledger.history(uuid4(), from_version=5)
    job, _ = _drive(ledger)
    for kwargs in ({"from_version": 0}, {"limit": 0}, {"limit": 10_000}):
        with pytest.raises(InvalidInputError):
            ledger.history(job.id, **kwargs)  # type: ignore[arg-type]


def test_state_as_of_each_version_and_each_instant(ledger: JobLedger) -> None:
    job, states = _drive(ledger)
    for state in states:
        assert _observable(ledger.job_as_of(job.id, version=state.version)) == _observable(state)
        assert _observable(ledger.job_as_of(job.id, at=state.updated_at)) == _observable(state)
    in_between = states[2].updated_at + (states[3].updated_at - states[2].updated_at) / 2
    assert ledger.job_as_of(job.id, at=in_between).version == states[2].version
    far_future = datetime.now(UTC) + timedelta(days=365)
    assert ledger.job_as_of(job.id, at=far_future).status is JobStatus.COMPLETED


def test_state_as_of_each_instant_across_indexed_versions(ledger: JobLedger) -> None:
    """The time index holds versions 1, 100, 200...: every instant between them still answers
    the version current then, events sharing an instant included."""
    job_id = ledger.create_job(job_type="long", total_items=1_000, actor=ACTOR).job.id
    states = [ledger.get_job(job_id), ledger.start_job(job_id, actor=WORKER).job]
    states += [ledger.update_progress(job_id, n, actor=WORKER).job for n in range(1, 249)]
    assert states[-1].version == 250
    for state in states:
        current_then = max(s.version for s in states if s.updated_at <= state.updated_at)
        past = ledger.job_as_of(job_id, at=state.updated_at)
        expected = states[current_then - 1]
        assert (past.version, past.processed_items) == (current_then, expected.processed_items)
    just_before = states[99].updated_at - timedelta(microseconds=1)
    expected = max(s.version for s in states if s.updated_at <= just_before)
    assert ledger.job_as_of(job_id, at=just_before).version == expected


def test_events_never_go_back_in_time(ledger: JobLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that steps back (or another host's, behind) stamps an event at its predecessor's
    time: a job's events stay in time order, and the state at that time is the later one."""
    created = ledger.create_job(job_type="clock", total_items=4, actor=ACTOR).job
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    monkeypatch.setattr(Job.Event, "create_timestamp", staticmethod(lambda: an_hour_ago))
    started = ledger.start_job(created.id, actor=WORKER).job
    monkeypatch.undo()
    progressed = ledger.update_progress(created.id, 1, actor=WORKER).job
    times = [entry.at for entry in ledger.history(created.id)]
    assert times == [created.updated_at, created.updated_at, progressed.updated_at]
    assert started.updated_at == created.updated_at
    assert ledger.job_as_of(created.id, at=created.updated_at).version == 2
    assert ledger.job_as_of(created.id, at=progressed.updated_at).processed_items == 1


def test_as_of_refuses_what_cannot_be_answered(ledger: JobLedger) -> None:
    job, states = _drive(ledger)
    with pytest.raises(JobNotFoundError, match="did not exist"):
        ledger.job_as_of(job.id, at=states[0].created_at - timedelta(microseconds=1))
    with pytest.raises(JobNotFoundError, match="no version 8: its current version is 7"):
        ledger.job_as_of(job.id, version=8)
    with pytest.raises(JobNotFoundError, match="no version 8"):
        ledger.job_as_of(job.id, version=8, at=states[0].created_at)
    with pytest.raises(InvalidInputError):
        ledger.job_as_of(job.id, version=0)
    with pytest.raises(InvalidInputError, match="a version, an instant, or both"):
        ledger.job_as_of(job.id)
    with pytest.raises(InvalidInputError, match="time zone"):
        ledger.job_as_of(job.id, at=datetime(2030, 1, 1))
    with pytest.raises(JobNotFoundError):
        ledger.job_as_of(uuid4(), version=1)


def test_a_version_and_an_instant_together_give_the_earlier_state(ledger: JobLedger) -> None:
    job, states = _drive(ledger)
    latest = states[-1].updated_at
    assert ledger.job_as_of(job.id, version=3, at=latest).version == 3
    assert ledger.job_as_of(job.id, version=7, at=states[2].updated_at).version <= 3
    assert ledger.job_as_of(job.id, version=7, at=latest) == ledger.get_job(job.id)
