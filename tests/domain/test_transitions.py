"""Every command from every status: allowed ones record one event, the others record nothing."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from domain.errors import InvalidTransitionError, LeaseLostError
from domain.job import JobStatus
from domain.ledger import CommandResult, JobLedger
from tests.domain.helpers import WORKER, job_in_status, stored_event_count

P, R, C, F, X, T = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
    JobStatus.RETRYING,
)

Command = Callable[[JobLedger, UUID], CommandResult]

#: command -> (run it, {status it is allowed from: the status after it}).
COMMANDS: dict[str, tuple[Command, dict[JobStatus, JobStatus]]] = {
    "start": (lambda lg, j: lg.start_job(j, actor=WORKER), {P: R, T: R}),
    "progress": (lambda lg, j: lg.update_progress(j, 1, actor=WORKER), {R: R}),
    "log_error": (lambda lg, j: lg.log_error(j, "boom", actor=WORKER), {P: P, R: R, T: T}),
    "complete": (lambda lg, j: lg.complete_job(j, {"rows": 3}, actor=WORKER), {R: C}),
    "fail-final": (
        lambda lg, j: lg.fail_job(j, "disk full", actor=WORKER, retry=False),
        {P: F, R: F, T: F},
    ),
    "fail-retry": (lambda lg, j: lg.fail_job(j, "disk full", actor=WORKER), {P: F, R: T, T: F}),
    "cancel-not-running": (
        lambda lg, j: lg.cancel_job(j, "not needed", actor=WORKER, ask_running=False),
        {P: X, T: X},
    ),
    "cancel": (lambda lg, j: lg.cancel_job(j, "stop", actor=WORKER), {P: X, T: X, R: R}),
    "retry": (lambda lg, j: lg.retry_job(j, actor="admin"), {F: P, X: P}),
}

CASES = [
    pytest.param(name, status, id=f"{name}-from-{status.value}")
    for name in COMMANDS
    for status in JobStatus
]


@pytest.mark.parametrize(("command", "status"), CASES)
def test_command_from_status(module_ledger: JobLedger, command: str, status: JobStatus) -> None:
    ledger = module_ledger
    run, allowed = COMMANDS[command]
    job_id = job_in_status(ledger, status)
    before = stored_event_count(ledger, job_id)

    if status in allowed:
        result = run(ledger, job_id)
        assert result.job.status is allowed[status]
        assert result.job.version == before + 1
        assert stored_event_count(ledger, job_id) == before + 1
        assert ledger.get_job(job_id).status is allowed[status]
        assert result.position == ledger.head(), "the answer names the command's own event"
    else:
        with pytest.raises(InvalidTransitionError) as raised:
            run(ledger, job_id)
        assert raised.value.status == status.value
        assert stored_event_count(ledger, job_id) == before
        assert ledger.get_job(job_id).status is status


def test_terminal_statuses_are_exactly_the_three_ends() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {C, F, X}


FENCED: dict[str, Callable[[JobLedger, UUID, int], CommandResult]] = {
    "heartbeat": lambda lg, j, a: lg.heartbeat(j, a, actor=WORKER, lease_seconds=3600),
    "progress": lambda lg, j, a: lg.update_progress(j, 1, actor=WORKER, attempt=a),
    "log_error": lambda lg, j, a: lg.log_error(j, "boom", actor=WORKER, attempt=a),
    "complete": lambda lg, j, a: lg.complete_job(j, actor=WORKER, attempt=a),
    "fail": lambda lg, j, a: lg.fail_job(j, "broken", actor=WORKER, attempt=a),
    "cancel": lambda lg, j, a: lg.cancel_job(j, actor=WORKER, attempt=a),
}
FENCED_CASES = [
    pytest.param(name, status, offset, id=f"{name}-from-{status.value}-attempt{offset:+d}")
    for name in FENCED
    for status in JobStatus
    for offset in (0, -1, 1)
]


@pytest.mark.parametrize(("command", "status", "offset"), FENCED_CASES)
def test_a_worker_command_names_the_running_attempt_or_records_nothing(
    module_ledger: JobLedger, command: str, status: JobStatus, offset: int
) -> None:
    ledger = module_ledger
    job_id = job_in_status(ledger, status)
    job = ledger.get_job(job_id)
    attempt = max(1, job.attempt + offset)
    before = stored_event_count(ledger, job_id)
    if status is R and attempt == job.attempt:
        result = FENCED[command](ledger, job_id, attempt)
        assert stored_event_count(ledger, job_id) == before + 1
        assert result.job.version == before + 1
    else:
        with pytest.raises(LeaseLostError) as raised:
            FENCED[command](ledger, job_id, attempt)
        assert (raised.value.status, raised.value.current_attempt) == (status.value, job.attempt)
        assert stored_event_count(ledger, job_id) == before
