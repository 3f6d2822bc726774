"""Shared helpers for ledger tests: bring a job to a status, count its stored events, run
work in threads released at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from domain.job import JobStatus
from domain.ledger import JobLedger

ACTOR = "user-1"
WORKER = "worker-1"


def job_in_status(ledger: JobLedger, status: JobStatus, total_items: int | None = 10) -> UUID:
    """Creates a job and drives it to ``status`` through the ledger."""
    job_id = ledger.create_job(
        job_type="import", data={"file": "a.csv"}, total_items=total_items, actor=ACTOR
    ).job.id
    if status in (JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.RETRYING):
        ledger.start_job(job_id, actor=WORKER)
    if status is JobStatus.RETRYING:
        ledger.fail_job(job_id, "flaky", actor=WORKER, retry_in_seconds=0)
    if status is JobStatus.COMPLETED:
        ledger.complete_job(job_id, actor=WORKER)
    if status is JobStatus.FAILED:
        ledger.fail_job(job_id, "broken", actor=WORKER)
    if status is JobStatus.CANCELLED:
        ledger.cancel_job(job_id, actor=ACTOR)
    assert ledger.get_job(job_id).status is status
    return job_id


def stored_event_count(ledger: JobLedger, job_id: UUID) -> int:
    return len(list(ledger.events.get(job_id)))


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Runs ``work(i)`` in ``count`` threads released at once; returns results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results
