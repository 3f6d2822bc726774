"""Commands with an idempotency key: a repeat records nothing and gets the first answer, on every
store, also from another ledger on the same store (another process, or after a restart: the
in-memory store has no second ledger, so those tests run on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from domain.errors import IdempotencyKeyReusedError, LeaseLostError
from domain.job import Job, JobStatus
from domain.ledger import JobLedger
from domain.receipts import Idempotency
from tests.conftest import on_backends
from tests.domain.helpers import ACTOR, WORKER, run_together, stored_event_count


def _key(key: str, fingerprint: str = "POST /progress {1}") -> Idempotency:
    def answer(job: Job) -> tuple[int, str]:
        return 200, json.dumps({"version": job.version, "processed": job.processed_items})

    return Idempotency(WORKER, key, fingerprint, answer)


def _running(ledger: JobLedger) -> Any:
    job_id = ledger.create_job(job_type="t", total_items=10, actor=ACTOR).job.id
    ledger.start_job(job_id, actor=WORKER, lease_seconds=30)
    return job_id


SHARED_STORES = on_backends("sqlite", "postgresql")


@SHARED_STORES
def test_a_repeated_command_records_one_event_and_replays_the_answer(
    make_ledger: Callable[[], JobLedger],
) -> None:
    ledger = make_ledger()
    job_id = _running(ledger)
    first = ledger.update_progress(job_id, 3, actor=WORKER, idempotency=_key("k1"))
    events = stored_event_count(ledger, job_id)
    ledger.update_progress(job_id, 5, actor=WORKER)
    again = make_ledger().update_progress(job_id, 3, actor=WORKER, idempotency=_key("k1"))
    assert again.replayed and not first.replayed
    assert again.answer == (200, json.dumps({"version": first.job.version, "processed": 3}))
    assert stored_event_count(ledger, job_id) == events + 1, "only the unkeyed command recorded"


def test_the_same_key_for_another_request_is_refused(ledger: JobLedger) -> None:
    job_id = _running(ledger)
    ledger.update_progress(job_id, 3, actor=WORKER, idempotency=_key("k1"))
    before = stored_event_count(ledger, job_id)
    with pytest.raises(IdempotencyKeyReusedError, match="another request"):
        ledger.update_progress(job_id, 4, actor=WORKER, idempotency=_key("k1", "other body"))
    assert stored_event_count(ledger, job_id) == before


def test_a_replay_answers_even_when_the_job_moved_on(ledger: JobLedger) -> None:
    """The first answer stands: the retry of a lost answer must not turn into a 409."""
    job_id = _running(ledger)
    ledger.complete_job(job_id, actor=WORKER, attempt=1, idempotency=_key("done"))
    replay = ledger.complete_job(job_id, actor=WORKER, attempt=1, idempotency=_key("done"))
    assert replay.replayed and replay.job.status is JobStatus.COMPLETED
    with pytest.raises(LeaseLostError):
        ledger.complete_job(job_id, actor=WORKER, attempt=1, idempotency=_key("new"))


def test_a_command_that_records_nothing_still_keeps_its_receipt(ledger: JobLedger) -> None:
    job_id = _running(ledger)
    beat = ledger.heartbeat(job_id, 1, actor=WORKER, idempotency=_key("beat"))
    assert not beat.replayed and beat.position > 0
    assert ledger.heartbeat(job_id, 1, actor=WORKER, idempotency=_key("beat")).replayed


@SHARED_STORES
def test_concurrent_repeats_record_the_command_once(
    make_ledger: Callable[[], JobLedger],
) -> None:
    ledgers = [make_ledger() for _ in range(4)]
    job_id = _running(ledgers[0])
    before = stored_event_count(ledgers[0], job_id)
    results = run_together(
        8,
        lambda i: ledgers[i % 4].update_progress(job_id, 2, actor=WORKER, idempotency=_key("same")),
    )
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(not r.replayed for r in results) == 1
    assert stored_event_count(ledgers[0], job_id) == before + 1
