"""Attempts, leases, retries and cancel requests (DESIGN section 9), on every store, with a clock
the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from domain.backoff import Backoff
from domain.errors import LeaseRenewedError, NotDueError
from domain.job import LEASE_EXPIRED_REASON, AttemptOutcome, Job, JobStatus
from domain.ledger import JobLedger
from tests.domain.helpers import ACTOR, WORKER, stored_event_count

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(ledger: JobLedger) -> Clock:
    clock = Clock()
    ledger.clock = clock
    ledger.backoff = Backoff(base=10, maximum=60, uniform=lambda low, high: high)
    return clock


def _claimed(ledger: JobLedger, *, max_attempts: int = 3, lease: float = 30) -> UUID:
    job_id = ledger.create_job(job_type="geocode", actor=ACTOR, max_attempts=max_attempts).job.id
    ledger.start_job(job_id, actor=WORKER, worker="host-1", lease_seconds=lease)
    return job_id


def test_a_claim_starts_an_attempt_with_its_lease(ledger: JobLedger, clock: Clock) -> None:
    job = ledger.get_job(_claimed(ledger))
    assert (job.status, job.attempt, job.worker) == (JobStatus.PROCESSING, 1, "host-1")
    assert job.lease_expires_at == T0 + timedelta(seconds=30)
    assert [(a.attempt, a.worker, a.outcome) for a in job.attempts] == [(1, "host-1", None)]


def test_a_job_is_not_started_before_its_run_at(ledger: JobLedger, clock: Clock) -> None:
    later = T0 + timedelta(minutes=5)
    job_id = ledger.create_job(job_type="t", actor=ACTOR, run_at=later).job.id
    with pytest.raises(NotDueError, match="due at"):
        ledger.start_job(job_id, actor=WORKER)
    clock.now = later
    assert ledger.start_job(job_id, actor=WORKER).job.status is JobStatus.PROCESSING


def test_a_heartbeat_records_only_past_half_the_lease(ledger: JobLedger, clock: Clock) -> None:
    job_id = _claimed(ledger)
    before = stored_event_count(ledger, job_id)
    clock.advance(14)
    assert ledger.heartbeat(job_id, 1, actor=WORKER).position == 0
    assert stored_event_count(ledger, job_id) == before
    clock.advance(2)
    beat = ledger.heartbeat(job_id, 1, actor=WORKER)
    assert beat.job.lease_expires_at == clock.now + timedelta(seconds=30)
    assert stored_event_count(ledger, job_id) == before + 1


def test_progress_extends_the_lease(ledger: JobLedger, clock: Clock) -> None:
    job_id = _claimed(ledger)
    clock.advance(10)
    job = ledger.update_progress(job_id, 1, actor=WORKER, attempt=1, lease_seconds=60).job
    assert job.lease_expires_at == clock.now + timedelta(seconds=60)
    assert job.lease_seconds == 60


def test_failed_attempts_back_off_exponentially_until_none_is_left(
    ledger: JobLedger, clock: Clock
) -> None:
    job_id = _claimed(ledger)
    waits = []
    for attempt in (1, 2):
        job = ledger.fail_job(job_id, f"boom {attempt}", actor=WORKER, attempt=attempt).job
        assert job.status is JobStatus.RETRYING
        waits.append((job.run_at - clock.now).total_seconds())
        clock.now = job.run_at
        ledger.start_job(job_id, actor=WORKER, lease_seconds=30)
    job = ledger.fail_job(job_id, "boom 3", actor=WORKER, attempt=3).job
    assert waits == [10 * 1.1, 20 * 1.1]
    assert (job.status, job.failure_reason) == (JobStatus.FAILED, "boom 3")
    assert [(a.attempt, a.outcome, a.error) for a in job.attempts] == [
        (1, AttemptOutcome.FAILED, "boom 1"),
        (2, AttemptOutcome.FAILED, "boom 2"),
        (3, AttemptOutcome.FAILED, "boom 3"),
    ]


def test_retry_in_seconds_overrides_the_backoff(ledger: JobLedger, clock: Clock) -> None:
    job = ledger.fail_job(_claimed(ledger), "rate limited", actor=WORKER, retry_in_seconds=2).job
    assert job.run_at == clock.now + timedelta(seconds=2)


def test_a_passed_lease_sends_the_job_back_then_fails_it_on_the_last_attempt(
    ledger: JobLedger, clock: Clock
) -> None:
    job_id = _claimed(ledger, max_attempts=2)
    lease = ledger.get_job(job_id).lease_expires_at
    assert lease is not None
    with pytest.raises(LeaseRenewedError):
        ledger.expire_lease(job_id, 1, lease)
    clock.now = lease
    job = ledger.expire_lease(job_id, 1, lease).job
    assert (job.status, job.run_at, job.lease_expires_at) == (
        JobStatus.RETRYING, lease + timedelta(seconds=11), None,
    )  # fmt: skip
    assert ledger.history(job_id)[-1].actor == "system:sweeper"
    clock.now = job.run_at
    second = ledger.start_job(job_id, actor=WORKER, lease_seconds=5).job
    assert (second.attempt, second.processed_items) == (2, 0)
    assert second.lease_expires_at is not None
    clock.now = second.lease_expires_at
    job = ledger.expire_lease(job_id, 2, second.lease_expires_at).job
    assert (job.status, job.failure_reason) == (JobStatus.FAILED, LEASE_EXPIRED_REASON)
    assert [a.outcome for a in job.attempts] == [AttemptOutcome.LEASE_EXPIRED] * 2


def test_a_sweeper_leaves_a_lease_extended_since_it_read_it(
    ledger: JobLedger, clock: Clock
) -> None:
    job_id = _claimed(ledger)
    read = ledger.get_job(job_id).lease_expires_at
    assert read is not None
    clock.advance(20)
    ledger.heartbeat(job_id, 1, actor=WORKER)
    clock.advance(15)
    with pytest.raises(LeaseRenewedError):
        ledger.expire_lease(job_id, 1, read)
    assert ledger.get_job(job_id).status is JobStatus.PROCESSING


def test_a_cancel_request_is_acknowledged_by_the_worker(ledger: JobLedger, clock: Clock) -> None:
    job_id = _claimed(ledger)
    asked = ledger.cancel_job(job_id, "not needed", actor=ACTOR).job
    assert (asked.status, asked.cancel_requested) == (JobStatus.PROCESSING, True)
    assert ledger.cancel_job(job_id, actor=ACTOR).position == 0
    job = ledger.fail_job(job_id, "stopping", actor=WORKER, attempt=1).job
    assert (job.status, job.cancel_reason) == (JobStatus.CANCELLED, "not needed")
    assert job.attempts[-1].outcome is AttemptOutcome.CANCELLED


def test_a_job_asked_to_cancel_may_still_complete(ledger: JobLedger, clock: Clock) -> None:
    job_id = _claimed(ledger)
    ledger.cancel_job(job_id, actor=ACTOR)
    assert ledger.complete_job(job_id, actor=WORKER, attempt=1).job.status is JobStatus.COMPLETED


def test_a_lease_passing_after_a_cancel_request_cancels(ledger: JobLedger, clock: Clock) -> None:
    job_id = _claimed(ledger)
    ledger.cancel_job(job_id, actor=ACTOR)
    lease = ledger.get_job(job_id).lease_expires_at
    assert lease is not None
    clock.now = lease
    assert ledger.expire_lease(job_id, 1, lease).job.status is JobStatus.CANCELLED


def test_a_manual_retry_grants_more_attempts_and_continues_the_numbering(
    ledger: JobLedger, clock: Clock
) -> None:
    job_id = _claimed(ledger, max_attempts=1)
    ledger.fail_job(job_id, "boom", actor=WORKER, attempt=1)
    clock.advance(100)
    job = ledger.retry_job(job_id, 2, actor=ACTOR).job
    assert (job.status, job.max_attempts, job.run_at, job.failure_reason) == (
        JobStatus.PENDING, 3, clock.now, None,
    )  # fmt: skip
    assert ledger.start_job(job_id, actor=WORKER).job.attempt == 2
    ledger.fail_job(job_id, "again", actor=WORKER, retry=False)
    assert ledger.retry_job(job_id, actor=ACTOR).job.max_attempts == 2 + 1, (
        "by default a retry grants the attempts the job was created with"
    )


def test_events_stored_before_workers_load_as_one_attempt_without_a_lease(
    ledger: JobLedger,
) -> None:
    """The upcasts: Created, Started and ProgressUpdated as the first wave stored them."""
    job_id = uuid4()
    at = datetime(2026, 6, 1, tzinfo=UTC)
    states = [
        ("jobledger:Job.Created", {"originator_topic": "jobledger:Job", "job_type": "import",
                                   "data_json": "null", "total_items": 4}),
        ("jobledger:Job.Started", {}),
        ("jobledger:Job.ProgressUpdated", {"processed_items": 2, "total_items": 4}),
    ]  # fmt: skip
    stored = [
        StoredEvent(
            originator_id=job_id,
            originator_version=version,
            topic=topic,
            state=ledger.mapper.transcoder.encode(
                {
                    **state,
                    "actor": ACTOR,
                    "originator_id": job_id,
                    "originator_version": version,
                    "timestamp": at + timedelta(seconds=version),
                }
            ),
        )
        for version, (topic, state) in enumerate(states, start=1)
    ]
    ledger.recorder.insert_events(stored)
    job = ledger.get_job(job_id)
    assert isinstance(job, Job)
    assert (job.attempt, job.lease_expires_at, job.priority, job.max_attempts) == (1, None, 0, 3)
    assert job.run_at == at + timedelta(seconds=1)
    assert (job.status, job.processed_items) == (JobStatus.PROCESSING, 2)
    assert [(a.attempt, a.outcome) for a in job.attempts] == [(1, None)]
