"""Long jobs reload fast and exactly: from a snapshot plus the events after it."""

from __future__ import annotations

from collections.abc import Callable

from domain.job import Job, JobStatus
from domain.ledger import JobLedger
from tests.domain.helpers import WORKER, job_in_status


def _state(job: Job) -> dict[str, object]:
    state = dict(vars(job))
    state.pop("_pending_events")
    return state


def test_five_thousand_progress_events_reload_from_a_snapshot(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    ledger = make_ledger()
    job_id = job_in_status(ledger, JobStatus.PROCESSING, total_items=10_000)
    ledger.log_error(job_id, "early trouble", details={"row": 3}, actor=WORKER)
    job = ledger.get_job(job_id)
    for n in range(1, 5_001):
        job.update_progress(n, actor=WORKER)
        if n % 250 == 0:
            ledger.save(job)
    ledger.save(job)

    reader = ledger if backend == "memory" else make_ledger()
    snapshots = list(reader.snapshots.get(job_id, desc=True, limit=1))  # type: ignore[union-attr]
    assert snapshots and snapshots[0].originator_version == 5_000
    assert (
        len(list(reader.events.get(job_id, gt=snapshots[0].originator_version)))
        == job.version - 5_000
    )

    reloaded = reader.get_job(job_id, version=job.version)
    assert _state(reloaded) == _state(job)
    assert (reloaded.status, reloaded.progress, reloaded.error_log[0].details) == (
        JobStatus.PROCESSING,
        50,
        {"row": 3},
    )
    assert _state(reader.get_job(job_id, version=4_321)) == _state(
        ledger.get_job(job_id, version=4_321)
    )
