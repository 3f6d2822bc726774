"""The runner and a store outage: it catches up within seconds of the store coming back.

1. A PostgreSQL restart: a private instance (see ``tests/reliability/conftest.py``) is stopped in
   "immediate" mode for ``DOWN_SECONDS``, with readers using the view meanwhile (as the API's
   requests do), then started again. Every wait on the way back (the view's connection pool, the
   ledger's pooled connections the server dropped, the runner lock, the LISTEN subscription, the
   runner's backoff) must be short: the runner applies a command made after the restart within
   ``CATCH_UP_SECONDS``.
2. The retries of a long outage do not lengthen the backoff of a failure that follows it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from domain.errors import LedgerUnavailableError
from domain.ledger import JobLedger
from projections import MemorySummaryView, ProjectionRunner, open_view
from projections import runner as runner_module
from stores import Store
from tests.reliability.conftest import PrivatePostgres
from tests.reliability.conftest import private_postgres as private_postgres

DOWN_SECONDS = 8.0
CATCH_UP_SECONDS = 3.0
READERS = 4


@pytest.fixture
def restarting_store(private_postgres: PrivatePostgres) -> Store:
    return Store.from_url(private_postgres.create_database("jobledger_restart"))


@pytest.fixture
def restarting_ledger(restarting_store: Store) -> Iterator[JobLedger]:
    ledger = JobLedger(env=restarting_store.ledger_env())
    try:
        yield ledger
    finally:
        ledger.close()


def read_until(stop: threading.Event, read: Callable[[], object]) -> None:
    while not stop.is_set():
        with contextlib.suppress(psycopg.Error, LedgerUnavailableError):
            read()
        stop.wait(0.05)


def create_when_back(ledger: JobLedger, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ledger.create_job(job_type="after", actor="restart").position
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.slow
def test_the_runner_catches_up_soon_after_a_database_restart(
    private_postgres: PrivatePostgres, restarting_store: Store, restarting_ledger: JobLedger
) -> None:
    ledger = restarting_ledger
    view = open_view(restarting_store)
    runner = ProjectionRunner(ledger, view).start()
    stop = threading.Event()
    readers = [
        threading.Thread(target=read_until, args=(stop, view.position), daemon=True)
        for _ in range(READERS)
    ]
    try:
        assert view.wait_for(ledger.create_job(job_type="before", actor="a").position, 5.0)
        for reader in readers:
            reader.start()
        private_postgres.stop("immediate")
        time.sleep(DOWN_SECONDS)
        private_postgres.start()
        back = time.monotonic()
        position = create_when_back(ledger, timeout=10.0)
        caught_up = view.wait_for(position, timeout=20.0)
        took = time.monotonic() - back
        print(f"caught up {took:.1f} s after the restart ({runner.failures} runner failures)")
        assert caught_up and took < CATCH_UP_SECONDS
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=5)
        runner.stop()
        view.close()


def test_a_failure_after_a_long_outage_is_retried_within_the_outage_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_module, "OUTAGE_MAX_BACKOFF", 0.05)
    ledger = JobLedger(env=Store.from_url("memory://").ledger_env())
    view = MemorySummaryView()
    apply = view.apply
    failures = [*[psycopg.OperationalError("the store is down")] * 12, RuntimeError("leftover")]

    def failing_apply(*args: Any) -> int:
        if failures:
            raise failures.pop(0)
        return apply(*args)

    monkeypatch.setattr(view, "apply", failing_apply)
    position = ledger.create_job(job_type="t", actor="a").position
    runner = ProjectionRunner(ledger, view, min_backoff=0.01, max_backoff=30.0).start()
    try:
        started = time.monotonic()
        assert view.wait_for(position, timeout=10.0)
        assert runner.failures == 13
        assert time.monotonic() - started < 3.0
    finally:
        runner.stop()
        ledger.close()
