"""Random command sequences against a small reference model of the rules in DESIGN sections 2
and 9, with a clock the test controls (leases pass, retries come due, backoff is exact)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from domain.backoff import Backoff
from domain.errors import (
    InvalidInputError,
    InvalidTransitionError,
    JobLedgerError,
    LeaseLostError,
    LeaseRenewedError,
    NotDueError,
    ProgressConflictError,
)
from domain.job import MAX_ERROR_LOG, Job, JobStatus
from domain.ledger import JobLedger

P, R, C, F, X, T = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
    JobStatus.RETRYING,
)
BASE = 10.0
START = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class Model:
    """The rules, written as plainly as possible."""

    total: int | None
    run_at: datetime
    max_attempts: int
    status: JobStatus = P
    processed: int = 0
    errors: list[str] = field(default_factory=list)
    version: int = 1
    attempt: int = 0
    lease: datetime | None = None
    lease_seconds: float | None = None
    cancel_requested: bool = False
    outcomes: list[str | None] = field(default_factory=list)

    @property
    def progress(self) -> int:
        if self.status is C:
            return 100
        if not self.total:
            return 0
        return min(99, self.processed * 100 // self.total)

    def end_attempt(self, outcome: str) -> None:
        if self.status is R:
            self.outcomes[-1] = outcome
        self.lease = None

    def fenced(self, attempt: int | None) -> bool:
        return attempt is not None and (self.status is not R or attempt != self.attempt)


def _expect(model: Model, allowed: set[JobStatus]) -> type[JobLedgerError] | None:
    return None if model.status in allowed else InvalidTransitionError


LEASES = st.none() | st.sampled_from([5.0, 30.0, 90.0])


class JobMachine(RuleBasedStateMachine):
    def __init__(self, ledger: JobLedger) -> None:
        super().__init__()
        self.ledger = ledger
        self.now = START
        ledger.clock = lambda: self.now
        ledger.backoff = Backoff(base=BASE, maximum=3600, uniform=lambda low, high: 1.0)

    @initialize(
        total=st.none() | st.integers(1, 50),
        delay=st.integers(-30, 30),
        max_attempts=st.integers(1, 3),
    )
    def create(self, total: int | None, delay: int, max_attempts: int) -> None:
        run_at = self.now + timedelta(seconds=delay)
        self.model = Model(total=total, run_at=run_at, max_attempts=max_attempts)
        self.job_id = self.ledger.create_job(
            job_type="t", total_items=total, actor="a", run_at=run_at, max_attempts=max_attempts
        ).job.id

    def _run(self, expected: type[JobLedgerError] | None, command: object, events: int = 1) -> None:
        if expected is None:
            command()  # type: ignore[operator]
            self.model.version += events
        else:
            with pytest.raises(expected):
                command()  # type: ignore[operator]

    def _attempt(self, offset: int | None) -> int | None:
        return None if offset is None else max(1, self.model.attempt + offset)

    @rule(seconds=st.sampled_from([1, 3, 20, 46, 100, 400]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(lease=LEASES)
    def start(self, lease: float | None) -> None:
        m = self.model
        expected = _expect(m, {P, T})
        if expected is None and m.run_at > self.now:
            expected = NotDueError
        self._run(
            expected,
            lambda: self.ledger.start_job(self.job_id, actor="w", worker="w1", lease_seconds=lease),
        )
        if expected is None:
            m.status, m.attempt, m.processed = R, m.attempt + 1, 0
            m.lease_seconds = lease
            m.lease = None if lease is None else self.now + timedelta(seconds=lease)
            m.outcomes.append(None)

    @rule(offset=st.sampled_from([0, 0, -1, 1]), lease=LEASES)
    def heartbeat(self, offset: int, lease: float | None) -> None:
        m = self.model
        attempt = max(1, m.attempt + offset)
        expected: type[JobLedgerError] | None = LeaseLostError if m.fenced(attempt) else None
        length = m.lease_seconds if lease is None else lease
        records = (
            expected is None
            and length is not None
            and (m.lease is None or (m.lease - self.now).total_seconds() < length / 2)
        )
        self._run(
            expected,
            lambda: self.ledger.heartbeat(self.job_id, attempt, actor="w", lease_seconds=lease),
            events=1 if records else 0,
        )
        if records:
            assert length is not None
            m.lease, m.lease_seconds = self.now + timedelta(seconds=length), length

    @rule(
        processed=st.integers(-2, 60),
        total=st.none() | st.integers(0, 60),
        offset=st.none() | st.sampled_from([0, -1]),
    )
    def progress(self, processed: int, total: int | None, offset: int | None) -> None:
        m = self.model
        attempt = self._attempt(offset)
        new_total = m.total if total is None else total
        expected: type[JobLedgerError] | None
        if processed < 0 or total == 0:
            expected = InvalidInputError
        elif m.fenced(attempt):
            expected = LeaseLostError
        elif m.status is not R:
            expected = InvalidTransitionError
        elif processed < m.processed or (new_total is not None and processed > new_total):
            expected = ProgressConflictError
        else:
            expected = None
        self._run(
            expected,
            lambda: self.ledger.update_progress(
                self.job_id, processed, total, actor="w", attempt=attempt
            ),
        )
        if expected is None:
            m.processed, m.total = processed, new_total
            if m.lease_seconds is not None:
                m.lease = self.now + timedelta(seconds=m.lease_seconds)

    @rule(message=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "\x00" not in s))
    def log_error(self, message: str) -> None:
        expected = _expect(self.model, {P, R, T})
        self._run(expected, lambda: self.ledger.log_error(self.job_id, message, actor="w"))
        if expected is None:
            self.model.errors.append(message)

    @rule(offset=st.none() | st.sampled_from([0, -1]))
    def complete(self, offset: int | None) -> None:
        m = self.model
        attempt = self._attempt(offset)
        expected = LeaseLostError if m.fenced(attempt) else _expect(m, {R})
        self._run(
            expected, lambda: self.ledger.complete_job(self.job_id, actor="w", attempt=attempt)
        )
        if expected is None:
            m.end_attempt("completed")
            m.status = C

    @rule(
        retry=st.booleans(),
        retry_in=st.none() | st.sampled_from([0.0, 50.0]),
        offset=st.none() | st.sampled_from([0, -1]),
    )
    def fail(self, retry: bool, retry_in: float | None, offset: int | None) -> None:
        m = self.model
        attempt = self._attempt(offset)
        expected = LeaseLostError if m.fenced(attempt) else _expect(m, {P, R, T})
        self._run(
            expected,
            lambda: self.ledger.fail_job(
                self.job_id, "r", actor="w", attempt=attempt, retry=retry,
                retry_in_seconds=retry_in,
            ),
        )  # fmt: skip
        if expected is not None:
            return
        if m.status is R and m.cancel_requested:
            m.end_attempt("cancelled")
            m.status = X
        elif m.status is R and retry and m.attempt < m.max_attempts:
            m.end_attempt("failed")
            wait = BASE * 2 ** (m.attempt - 1) if retry_in is None else retry_in
            m.status, m.run_at = T, self.now + timedelta(seconds=wait)
        else:
            m.end_attempt("failed")
            m.status = F

    @rule(worker=st.booleans(), ask_running=st.booleans())
    def cancel(self, worker: bool, ask_running: bool) -> None:
        m = self.model
        attempt = max(1, m.attempt) if worker else None
        expected: type[JobLedgerError] | None
        events = 1
        if worker:
            expected = LeaseLostError if m.fenced(attempt) else None
        elif ask_running and m.status is R:
            expected, events = None, 0 if m.cancel_requested else 1
        else:
            expected = _expect(m, {P, T})
        self._run(
            expected,
            lambda: self.ledger.cancel_job(
                self.job_id, actor="w", attempt=attempt, ask_running=ask_running
            ),
            events=events,
        )
        if expected is not None:
            return
        if not worker and m.status is R:
            m.cancel_requested = True
        else:
            m.end_attempt("cancelled")
            m.status = X

    @rule(more=st.none() | st.integers(1, 3))
    def retry(self, more: int | None) -> None:
        m = self.model
        expected = _expect(m, {F, X})
        self._run(expected, lambda: self.ledger.retry_job(self.job_id, more, actor="admin"))
        if expected is None:
            m.status, m.run_at, m.cancel_requested = P, self.now, False
            m.max_attempts = m.attempt + (self.initial_max_attempts if more is None else more)

    @property
    def initial_max_attempts(self) -> int:
        return self.ledger.get_job(self.job_id, version=1).max_attempts

    @rule()
    def sweep(self) -> None:
        m = self.model
        if m.status is not R or m.lease is None:
            return
        lease = m.lease
        expected = None if lease <= self.now else LeaseRenewedError
        self._run(expected, lambda: self.ledger.expire_lease(self.job_id, m.attempt, lease))
        if expected is not None:
            return
        m.end_attempt("lease-expired")
        if not m.cancel_requested and m.attempt < m.max_attempts:
            m.status, m.run_at = T, self.now + timedelta(seconds=BASE * 2 ** (m.attempt - 1))
        else:
            m.status = X if m.cancel_requested else F

    @invariant()
    def reloaded_job_equals_model(self) -> None:
        if not hasattr(self, "model"):
            return
        m = self.model
        cached = self.ledger.get_job(self.job_id)
        stored = self.ledger.get_job(self.job_id, version=m.version)
        for job in (cached, stored):
            assert _observable(job) == (
                m.status, m.processed, m.total, m.progress, len(m.errors),
                m.errors[-MAX_ERROR_LOG:], m.version, m.attempt, m.max_attempts, m.lease,
                m.cancel_requested, m.run_at, m.outcomes,
                None if m.status is not R else "w1",
            )  # fmt: skip


def _observable(job: Job) -> tuple[object, ...]:
    return (
        job.status, job.processed_items, job.total_items, job.progress, job.error_count,
        [e.message for e in job.error_log], job.version, job.attempt, job.max_attempts,
        job.lease_expires_at, job.cancel_requested, job.run_at,
        [None if a.outcome is None else str(a.outcome) for a in job.attempts], job.worker,
    )  # fmt: skip


def test_random_command_sequences_follow_the_rules(ledger: JobLedger) -> None:
    run_state_machine_as_test(
        lambda: JobMachine(ledger),
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_terminal_statuses_are_exactly_the_three_ends() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {C, F, X}
