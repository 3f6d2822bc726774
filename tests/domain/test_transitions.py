"""Every command from every status: allowed ones record one event, the others record nothing."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from domain.errors import InvalidTransitionError
from domain.job import JobStatus
from domain.ledger import CommandResult, JobLedger
from tests.domain.helpers import WORKER, job_in_status, stored_event_count

P, R, C, F, X = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)

Command = Callable[[JobLedger, UUID], CommandResult]

COMMANDS: dict[str, tuple[Command, set[JobStatus], JobStatus | None]] = {
    "start": (lambda lg, j: lg.start_job(j, actor=WORKER), {P}, R),
    "progress": (lambda lg, j: lg.update_progress(j, 1, actor=WORKER), {R}, R),
    "log_error": (lambda lg, j: lg.log_error(j, "boom", actor=WORKER), {P, R}, None),
    "complete": (lambda lg, j: lg.complete_job(j, {"rows": 3}, actor=WORKER), {R}, C),
    "fail": (lambda lg, j: lg.fail_job(j, "disk full", actor=WORKER), {P, R}, F),
    "cancel": (lambda lg, j: lg.cancel_job(j, "not needed", actor=WORKER), {P}, X),
}

CASES = [
    pytest.param(name, status, id=f"{name}-from-{status.value}")
    for name in COMMANDS
    for status in JobStatus
]


@pytest.mark.parametrize(("command", "status"), CASES)
def test_command_from_status(ledger: JobLedger, command: str, status: JobStatus) -> None:
    run, allowed_from, status_after = COMMANDS[command]
    job_id = job_in_status(ledger, status)
    before = stored_event_count(ledger, job_id)

    if status in allowed_from:
        result = run(ledger, job_id)
        assert result.job.status is (status_after or status)
        assert result.job.version == before + 1
        assert stored_event_count(ledger, job_id) == before + 1
        assert ledger.get_job(job_id).status is (status_after or status)
        assert result.position == ledger.head()
    else:
        with pytest.raises(InvalidTransitionError) as raised:
            run(ledger, job_id)
        assert raised.value.status == status.value
        assert stored_event_count(ledger, job_id) == before
        assert ledger.get_job(job_id).status is status


def test_terminal_statuses_are_exactly_the_three_ends() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {C, F, X}
