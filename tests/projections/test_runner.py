"""The runner on every backend: read-your-writes, one active runner, restarts after failures.

Several views of one store stand for several processes (each has its own connections and its
own runner lock handle); on the in-memory store they share the one view its process has.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import pytest

from domain.ledger import JobLedger
from projections import JobQuery, JobSummaryView, ProjectionRunner, verify
from tests.conftest import on_backends
from tests.eventually import eventually
from tests.projections.conftest import MakeRunner, MakeView
from tests.projections.helpers import folded, random_command


def test_a_command_then_an_immediate_query_always_sees_it(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    rng = random.Random(3)
    job_ids: list[Any] = []
    waits: list[float] = []
    for attempt in range(1000):
        if attempt % 2 == 0:
            result = ledger.create_job(job_type="import", actor="ryw")
            job_ids.append(result.job.id)
        elif attempt % 4 == 1:
            result = ledger.start_job(job_ids[-1], actor="w")
        else:
            result = ledger.log_error(rng.choice(job_ids), "e", actor="w")
        started = time.perf_counter()
        assert view.wait_for(result.position, timeout=5.0), f"attempt {attempt} timed out"
        waits.append(time.perf_counter() - started)
        row = view.get(result.job.id)
        assert row is not None and row.version == result.job.version, f"attempt {attempt}"
        if attempt % 2 == 0:
            newest = view.query(JobQuery(created_by="ryw", limit=1)).items
            assert newest[0].id == result.job.id, f"attempt {attempt}"
    waits.sort()
    print(f"read-your-writes wait p50 {waits[500] * 1e3:.2f} ms, p99 {waits[990] * 1e3:.2f} ms")


#: A runner's start (its connections, the runner lock, the subscription's first pull) on a
#: loaded machine: generous, since the test is about the waits after it.
STARTUP_SECONDS = 30.0


def test_wait_for_sees_another_processs_runner_within_milliseconds(
    backend: str, ledger: JobLedger, view: JobSummaryView[Any], make_view: MakeView,
    runner: ProjectionRunner,
) -> None:  # fmt: skip
    other = view if backend == "memory" else make_view()
    first = ledger.create_job(job_type="t", actor="a").position
    assert other.wait_for(first, timeout=STARTUP_SECONDS), (
        f"the runner did not start and apply position {first} within {STARTUP_SECONDS} s"
    )
    waits = []
    for _ in range(30):
        position = ledger.create_job(job_type="t", actor="a").position
        started = time.perf_counter()
        assert other.wait_for(position, timeout=5.0), (
            f"position {position} not seen within 5 s; the view is at {other.position()}"
        )
        waits.append(time.perf_counter() - started)
        assert other.position() >= position
        started = time.perf_counter()
        assert other.wait_for(position, timeout=5.0)
        assert time.perf_counter() - started < 0.001, "an applied position returns at once"
    waits.sort()
    assert waits[15] < 0.05, f"median wait {waits[15] * 1e3:.1f} ms"

    started = time.perf_counter()
    assert not other.wait_for(ledger.head() + 1_000, timeout=0.05)
    assert 0.05 <= time.perf_counter() - started < 1.0


@on_backends("sqlite", "postgresql")
def test_a_local_wait_for_what_an_earlier_runner_applied_returns_at_once(
    ledger: JobLedger, view: JobSummaryView[Any], make_view: MakeView, make_runner: MakeRunner
) -> None:
    """A process whose runner is active waits without reading the store (``local``): its runner
    must tell its view how far an earlier runner (another process's, or a past one) got."""
    earlier = make_runner()
    position = ledger.create_job(job_type="t", actor="a").position
    assert view.wait_for(position, timeout=5.0)
    earlier.stop()

    fresh = make_view()
    runner = make_runner(ledger, fresh)
    eventually(lambda: runner.active, what="the runner becoming active")
    started = time.perf_counter()
    assert fresh.wait_for(position, timeout=2.0, local=True)
    assert time.perf_counter() - started < 0.5


def test_one_runner_is_active_and_a_standby_takes_over(
    backend: str, ledger: JobLedger, view: JobSummaryView[Any], make_view: MakeView,
    make_runner: MakeRunner, make_ledger: Any,
) -> None:  # fmt: skip
    second_ledger = ledger if backend == "memory" else make_ledger()
    second_view = view if backend == "memory" else make_view()
    runners = [make_runner(), make_runner(second_ledger, second_view)]
    rng = random.Random(5)
    job_ids: list[Any] = []
    for _ in range(60):
        random_command(rng.choice((ledger, second_ledger)), rng, job_ids)

    eventually(lambda: sum(r.active for r in runners) == 1, what="exactly one active runner")
    assert view.wait_for(ledger.head(), timeout=5.0)
    for _ in range(10):
        assert sum(r.active for r in runners) == 1
        time.sleep(0.01)
    assert view.runner_holder() is not None
    assert verify(ledger, view).ok

    active = next(r for r in runners if r.active)
    standby = next(r for r in runners if not r.active)
    active.stop()
    eventually(lambda: standby.active, what="the standby runner taking over")
    for _ in range(20):
        random_command(ledger, rng, job_ids)
    assert view.wait_for(ledger.head(), timeout=5.0)
    assert {row.id: row for row in view.rows()} == folded(ledger, job_ids)
    standby.stop()
    eventually(lambda: view.runner_holder() is None, what="the runner lock being released")


def test_a_failing_runner_logs_loudly_and_restarts_with_backoff(
    ledger: JobLedger, view: JobSummaryView[Any], make_runner: MakeRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    job_ids = [ledger.create_job(job_type="t", actor="a").job.id for _ in range(5)]
    apply, failures = view.apply, [3]

    def flaky_apply(*args: Any) -> int:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("the view's store is down")
        return apply(*args)

    view.apply = flaky_apply  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="projections.runner"):
        runner = make_runner(min_backoff=0.01, max_backoff=0.05)
        assert view.wait_for(ledger.head(), timeout=5.0)

    assert runner.failures == 3
    assert runner.active
    assert isinstance(runner.last_error, RuntimeError)
    failures_logged = [r for r in caplog.records if "runner FAILED" in r.getMessage()]
    assert len(failures_logged) == 3
    assert all(r.levelno == logging.ERROR and r.exc_info for r in failures_logged)
    assert {row.id: row for row in view.rows()} == folded(ledger, job_ids)
