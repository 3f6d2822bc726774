"""Concurrent commands on one job: the rules decide, nothing is lost, retries are bounded.

Within one ledger, commands on a job take turns; across ledgers (processes) on a shared store the
optimistic-concurrency check catches the race and the loser retries. The in-memory store cannot be
shared between ledgers, so it runs the single-ledger half.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.errors import ConcurrencyExhaustedError, InvalidTransitionError
from domain.job import Job, JobStatus
from domain.ledger import JobLedger
from domain.receipts import CommandReceipt
from stores import Store
from tests.domain.helpers import WORKER, job_in_status, run_together


def _ledgers(backend: str, make_ledger: Callable[[], JobLedger]) -> list[JobLedger]:
    return [make_ledger()] if backend == "memory" else [make_ledger(), make_ledger()]


def test_fifty_concurrent_starts_record_exactly_one(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    ledgers = _ledgers(backend, make_ledger)
    job_id = job_in_status(ledgers[0], JobStatus.PENDING)

    results = run_together(
        50, lambda i: ledgers[i % len(ledgers)].start_job(job_id, actor=f"w{i}")
    )

    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert len(losers) == 49 and all(isinstance(e, InvalidTransitionError) for e in losers)
    events = list(ledgers[0].events.get(job_id))
    assert [type(e) for e in events] == [Job.Created, Job.Started]


def test_twenty_threads_logging_fifty_errors_each_lose_nothing(ledger: JobLedger) -> None:
    job_id = job_in_status(ledger, JobStatus.PROCESSING)

    def log_fifty(i: int) -> None:
        for n in range(50):
            ledger.log_error(job_id, f"t{i}-{n}", actor=f"w{i}")

    results = run_together(20, log_fifty)

    assert [r for r in results if r is not None] == []
    events = list(ledger.events.get(job_id))
    assert [e.originator_version for e in events] == list(range(1, 1003))
    messages = {e.message for e in events if isinstance(e, Job.ErrorLogged)}
    assert messages == {f"t{i}-{n}" for i in range(20) for n in range(50)}
    assert ledger.get_job(job_id).error_count == 1000


def test_ten_concurrent_commands_from_two_processes_all_succeed(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    ledgers = _ledgers(backend, make_ledger)
    job_id = job_in_status(ledgers[0], JobStatus.PROCESSING)

    for round_ in range(20):

        def log_one(i: int, round_: int = round_) -> None:
            ledgers[i % len(ledgers)].log_error(job_id, f"r{round_}-{i}", actor="w")

        results = run_together(10, log_one)
        assert [r for r in results if isinstance(r, Exception)] == []

    events = list(ledgers[-1].events.get(job_id))
    assert [e.originator_version for e in events] == list(range(1, 203))


class AlwaysOvertaken(JobLedger):
    """A ledger whose every save of a change is preceded by another writer's event on that job."""

    def _save_job(
        self, job: Job, deadline: float | None, receipt: CommandReceipt | None = None
    ) -> int:
        if job.version > 1:
            rival = self.repository.get(job.id)
            rival.log_error("overtook you", actor="rival")
            self.save(rival)
        return super()._save_job(job, deadline, receipt)


def test_retries_are_bounded_and_say_so(store_url: str) -> None:
    ledger = AlwaysOvertaken(env=Store.from_url(store_url).ledger_env())
    job_id = ledger.create_job(job_type="t", actor="a").job.id
    with pytest.raises(ConcurrencyExhaustedError) as raised:
        ledger.start_job(job_id, actor=WORKER)
    assert raised.value.attempts == ledger.max_attempts
    job = ledger.get_job(job_id)
    assert (job.status, job.error_count) == (JobStatus.PENDING, ledger.max_attempts)
    ledger.close()


def test_a_process_acting_on_a_job_another_process_changed_sees_the_change(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    here, there = _ledgers(backend, make_ledger) * (2 if backend == "memory" else 1)
    job_id = job_in_status(here, JobStatus.PENDING)

    there.start_job(job_id, actor="w-there")
    assert here.update_progress(job_id, 3, actor="w-here").job.processed_items == 3
    there.log_error(job_id, "from there", actor="w-there")
    assert here.log_error(job_id, "from here", actor="w-here").job.error_count == 2
    assert here.get_job(job_id).version == there.get_job(job_id).version == 5
    there.complete_job(job_id, actor="w-there")
    with pytest.raises(InvalidTransitionError):
        here.fail_job(job_id, "too late", actor="w-here")
    assert [type(e) for e in there.events.get(job_id)][-1] is Job.Completed
