"""Claims through the read side (projections.claims) on every store: each job to exactly one
claimer, in claim order, and waiting claims woken by the log or by the next ``runAt``."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.errors import LedgerUnavailableError
from domain.ledger import JobLedger
from domain.receipts import Idempotency
from projections.claims import ClaimResult, Claims
from tests.conftest import on_backends
from tests.projections.conftest import MakeRunner, MakeView

ACTOR = "owner"
WORKER = "worker"


def _claims(ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner) -> Claims:
    """A process's claims: its own view and runner on the shared store."""
    view = make_view()
    runner = make_runner(on=ledger, into=view)
    return Claims(ledger, view, local=lambda: runner.active)


def _claim(claims: Claims, limit: int = 1, wait: float = 0.0, **options: Any) -> list[UUID]:
    result = claims.claim(
        actor=WORKER, worker="w", types=options.get("types"), limit=limit, lease_seconds=30,
        wait_seconds=wait,
    )  # fmt: skip
    return [job.id for job in result.jobs]


def test_claims_follow_priority_then_run_at_then_age(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner
) -> None:
    claims = _claims(ledger, make_view, make_runner)
    now = datetime.now(UTC)
    made = {
        name: ledger.create_job(job_type=t, actor=ACTOR, priority=p, run_at=now + timedelta(0, d))
        .job.id
        for name, t, p, d in [
            ("old-low", "a", 0, -1), ("urgent", "a", 5, -1), ("earlier", "a", 0, -60),
            ("later", "b", 0, -1), ("future", "a", 99, 3600),
        ]
    }  # fmt: skip
    order = {job_id: name for name, job_id in made.items()}
    assert claims.view.wait_for(ledger.head(), 10), "the view did not show the jobs created"
    assert [order[j] for j in _claim(claims, limit=2, wait=2)] == ["urgent", "earlier"]
    assert [order[j] for j in _claim(claims, limit=5, types=["b"])] == ["later"]
    assert [order[j] for j in _claim(claims, limit=5)] == ["old-low"]
    assert _claim(claims, limit=5) == [], "the future job is not due"


def test_a_waiting_claim_is_answered_when_a_job_is_created(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner
) -> None:
    claims = _claims(ledger, make_view, make_runner)
    got: list[list[UUID]] = []
    waiting = threading.Thread(target=lambda: got.append(_claim(claims, wait=20)))
    waiting.start()
    time.sleep(0.05)
    created = ledger.create_job(job_type="a", actor=ACTOR).job.id
    started = time.monotonic()
    waiting.join(20)
    assert got == [[created]], "the waiting claim did not get the job created meanwhile"
    assert time.monotonic() - started < 10


def test_a_waiting_claim_is_answered_when_a_run_at_comes(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner
) -> None:
    claims = _claims(ledger, make_view, make_runner)
    due = datetime.now(UTC) + timedelta(seconds=0.3)
    job_id = ledger.create_job(job_type="a", actor=ACTOR, run_at=due).job.id
    assert _claim(claims, wait=20) == [job_id]
    assert datetime.now(UTC) >= due


@on_backends("sqlite", "postgresql")
def test_twenty_claimers_in_two_processes_claim_each_job_exactly_once(
    make_ledger: Callable[[], JobLedger], make_view: MakeView, make_runner: MakeRunner
) -> None:
    processes = [_claims(make_ledger(), make_view, make_runner) for _ in range(2)]
    creator = processes[0].ledger
    jobs = {creator.create_job(job_type="a", actor=ACTOR).job.id for _ in range(500)}
    claimed: Counter[UUID] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + 120

    def claimer(i: int) -> None:
        claims = processes[i % 2]
        idle = 0
        while idle < 3 and time.monotonic() < deadline:
            ids = _claim(claims, limit=5, wait=0.5)
            idle = 0 if ids else idle + 1
            with lock:
                claimed.update(ids)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    assert set(claimed) == jobs, f"{len(jobs - set(claimed))} jobs never claimed"
    assert max(claimed.values()) == 1, "a job was handed to two claimers"
    assert {creator.get_job(j).attempt for j in jobs} == {1}


@pytest.mark.parametrize("limit", [1, 10])
def test_concurrent_claimers_of_one_process_never_share_a_job(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner, limit: int
) -> None:
    claims = _claims(ledger, make_view, make_runner)
    jobs = {ledger.create_job(job_type="a", actor=ACTOR).job.id for _ in range(100)}
    results: list[list[UUID]] = []

    def claimer() -> None:
        while ids := _claim(claims, limit=limit, wait=0.2):
            results.append(ids)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    handed = [j for ids in results for j in ids]
    assert sorted(handed) == sorted(jobs)
    assert claims.lost_races == 0, "claimers of one process raced each other"


def test_a_repeated_claim_gets_the_first_answer_and_claims_nothing(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner
) -> None:
    claims = _claims(ledger, make_view, make_runner)
    for _ in range(3):
        ledger.create_job(job_type="a", actor=ACTOR)
    key = Idempotency(
        WORKER, "claim-1", "POST /claim {}", lambda jobs: (200, ",".join(str(j.id) for j in jobs))
    )

    def claim() -> ClaimResult:
        return claims.claim(
            actor=WORKER, worker="w", types=None, limit=2, lease_seconds=30, wait_seconds=2,
            idempotency=key,
        )  # fmt: skip

    assert claims.view.wait_for(ledger.head(), 10), "the view did not show the jobs created"
    first, again = claim(), claim()
    assert len(first.jobs) == 2 and again.jobs == []
    assert again.answer == (200, ",".join(str(j.id) for j in first.jobs))
    assert len(_claim(claims, limit=5)) == 1, "the repeat left the third job unclaimed"


def test_a_claim_the_store_refused_leaves_its_jobs_claimable(
    ledger: JobLedger, make_view: MakeView, make_runner: MakeRunner
) -> None:
    """A store outage during a claim (503) must not leave its candidates marked as being
    claimed in this process, or no claim of this process would ever get them."""
    claims = _claims(ledger, make_view, make_runner)
    jobs = {ledger.create_job(job_type="a", actor=ACTOR).job.id for _ in range(3)}
    assert claims.view.wait_for(ledger.head(), 10), "the view did not show the jobs created"
    working_start = ledger.start_job

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise LedgerUnavailableError("the event store is unavailable")

    ledger.start_job = unavailable  # type: ignore[method-assign]
    with pytest.raises(LedgerUnavailableError):
        _claim(claims, limit=3)
    ledger.start_job = working_start  # type: ignore[method-assign]
    assert set(_claim(claims, limit=3)) == jobs
