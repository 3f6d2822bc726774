"""Random command sequences against a small reference model of the rules in DESIGN section 2."""

from __future__ import annotations

from dataclasses import dataclass, field

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

from domain.errors import (
    InvalidInputError,
    InvalidTransitionError,
    JobLedgerError,
    ProgressConflictError,
)
from domain.job import MAX_ERROR_LOG, Job, JobStatus
from domain.ledger import JobLedger

P, R, C, F, X = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)


@dataclass
class Model:
    """The rules, written as plainly as possible."""

    total: int | None
    status: JobStatus = P
    processed: int = 0
    errors: list[str] = field(default_factory=list)
    version: int = 1

    @property
    def progress(self) -> int:
        if self.status is C:
            return 100
        if not self.total:
            return 0
        return min(99, self.processed * 100 // self.total)


def _expect(model: Model, allowed: set[JobStatus]) -> type[JobLedgerError] | None:
    return None if model.status in allowed else InvalidTransitionError


class JobMachine(RuleBasedStateMachine):
    def __init__(self, ledger: JobLedger) -> None:
        super().__init__()
        self.ledger = ledger

    @initialize(total=st.none() | st.integers(1, 50))
    def create(self, total: int | None) -> None:
        self.model = Model(total=total)
        self.job_id = self.ledger.create_job(job_type="t", total_items=total, actor="a").job.id

    def _run(self, expected: type[JobLedgerError] | None, command: object) -> None:
        if expected is None:
            command()  # type: ignore[operator]
            self.model.version += 1
        else:
            with pytest.raises(expected):
                command()  # type: ignore[operator]

    @rule()
    def start(self) -> None:
        expected = _expect(self.model, {P})
        self._run(expected, lambda: self.ledger.start_job(self.job_id, actor="w"))
        if expected is None:
            self.model.status = R

    @rule(processed=st.integers(-2, 60), total=st.none() | st.integers(0, 60))
    def progress(self, processed: int, total: int | None) -> None:
        m = self.model
        new_total = m.total if total is None else total
        expected: type[JobLedgerError] | None
        if processed < 0 or total == 0:
            expected = InvalidInputError
        elif m.status is not R:
            expected = InvalidTransitionError
        elif processed < m.processed or (new_total is not None and processed > new_total):
            expected = ProgressConflictError
        else:
            expected = None
        self._run(
            expected, lambda: self.ledger.update_progress(self.job_id, processed, total, actor="w")
        )
        if expected is None:
            m.processed, m.total = processed, new_total

    @rule(message=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "\x00" not in s))
    def log_error(self, message: str) -> None:
        expected = _expect(self.model, {P, R})
        self._run(expected, lambda: self.ledger.log_error(self.job_id, message, actor="w"))
        if expected is None:
            self.model.errors.append(message)

    @rule()
    def complete(self) -> None:
        expected = _expect(self.model, {R})
        self._run(expected, lambda: self.ledger.complete_job(self.job_id, actor="w"))
        if expected is None:
            self.model.status = C

    @rule()
    def fail(self) -> None:
        expected = _expect(self.model, {P, R})
        self._run(expected, lambda: self.ledger.fail_job(self.job_id, "r", actor="w"))
        if expected is None:
            self.model.status = F

    @rule()
    def cancel(self) -> None:
        expected = _expect(self.model, {P})
        self._run(expected, lambda: self.ledger.cancel_job(self.job_id, actor="w"))
        if expected is None:
            self.model.status = X

    @invariant()
    def reloaded_job_equals_model(self) -> None:
        if not hasattr(self, "model"):
            return
        cached = self.ledger.get_job(self.job_id)
        stored = self.ledger.get_job(self.job_id, version=self.model.version)
        for job in (cached, stored):
            assert _observable(job) == (
                self.model.status,
                self.model.processed,
                self.model.total,
                self.model.progress,
                len(self.model.errors),
                self.model.errors[-MAX_ERROR_LOG:],
                self.model.version,
            )


def _observable(job: Job) -> tuple[object, ...]:
    return (
        job.status,
        job.processed_items,
        job.total_items,
        job.progress,
        job.error_count,
        [e.message for e in job.error_log],
        job.version,
    )


def test_random_command_sequences_follow_the_rules(ledger: JobLedger) -> None:
    run_state_machine_as_test(
        lambda: JobMachine(ledger),
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
