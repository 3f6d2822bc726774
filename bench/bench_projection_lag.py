"""Projection lag and read-your-writes waits under the write workload, on SQLite and PostgreSQL.

Workload: 300 jobs (40 with ``--quick``) through the 13-command lifecycle (create, start, 10
progress updates, complete), one command per save as the API issues them, with the view's
``ProjectionRunner`` active in the same process (on SQLite it is woken in-process after each
save; on PostgreSQL it follows the library's LISTEN/NOTIFY subscription).

- lag: per command, from the ledger's post-commit notification (``JobLedger.add_listener``) to
  the commit of the view transaction that applied its event; the writer does not wait.
- read-your-writes: the writer calls ``view.wait_for(position)`` after every command, as the API
  does before it answers; per command, how long that wait took.

Reference: the commands' own latency in the same run (a save, durable), at the same percentile;
ratio = figure / command latency. Targets: lag p99 <= 50 ms, read-your-writes wait p99 <= 10 ms.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

from bench.results import Figure
from bench.support import PostgresUnavailable, postgres_database, sqlite_directory
from domain.ledger import CommandResult, JobLedger
from projections import ProjectionRunner, open_view
from stores import Store

JOBS = 300
QUICK_JOBS = 40
PROGRESS_UPDATES = 10
TOTAL_ITEMS = 1_000


def run(quick: bool) -> list[Figure]:
    jobs = QUICK_JOBS if quick else JOBS
    figures: list[Figure] = []
    with sqlite_directory() as directory:
        figures += measure("sqlite", f"sqlite:///{directory / 'jobledger.db'}", jobs)
    try:
        with postgres_database() as url:
            figures += measure("postgresql", url, jobs)
    except PostgresUnavailable as error:
        print(f"projection_lag: PostgreSQL skipped: {error}")
    return figures


def measure(store: str, url: str, jobs: int) -> list[Figure]:
    with closing(JobLedger(env=Store.from_url(url).ledger_env())) as ledger:
        view = open_view(Store.from_url(url))
        applied: list[tuple[int, float]] = []
        apply = view.apply

        def timed_apply(*args: Any) -> int:
            position = apply(*args)
            applied.append((position, time.perf_counter()))
            return position

        view.apply = timed_apply  # type: ignore[method-assign]
        commits: list[tuple[int, float]] = []
        ledger.add_listener(lambda position: commits.append((position, time.perf_counter())))
        runner = ProjectionRunner(ledger, view).start()
        try:
            drive(ledger, 2, lambda position: view.wait_for(position, 10.0))
            commits.clear()
            commands = drive(ledger, jobs, lambda position: None)
            head = ledger.head()
            assert view.wait_for(head, timeout=60.0)
            while not applied or applied[-1][0] < head:
                time.sleep(0.001)
            lags = _lags(commits, applied)
            waits: list[float] = []

            def wait(position: int) -> None:
                started = time.perf_counter()
                assert view.wait_for(position, timeout=10.0)
                waits.append(time.perf_counter() - started)

            commands += drive(ledger, jobs, wait)
        finally:
            runner.stop()
            view.close()
    print(
        f"projection_lag: {store}: lag p50 {_ms(lags, 0.5):.2f} ms p99 {_ms(lags, 0.99):.2f} ms; "
        f"wait p50 {_ms(waits, 0.5):.2f} ms p99 {_ms(waits, 0.99):.2f} ms; "
        f"commands p50 {_ms(commands, 0.5):.2f} ms p99 {_ms(commands, 0.99):.2f} ms"
    )
    return [
        Figure.compare(
            f"projection_lag {store}: lag p50", _ms(lags, 0.5), _ms(commands, 0.5), "ms"
        ),
        Figure.compare(
            f"projection_lag {store}: lag p99 (target <= 50 ms)",
            _ms(lags, 0.99),
            _ms(commands, 0.99),
            "ms",
        ),
        Figure.compare(
            f"projection_lag {store}: read-your-writes wait p50",
            _ms(waits, 0.5),
            _ms(commands, 0.5),
            "ms",
        ),
        Figure.compare(
            f"projection_lag {store}: read-your-writes wait p99 (target <= 10 ms)",
            _ms(waits, 0.99),
            _ms(commands, 0.99),
            "ms",
        ),
    ]


def drive(ledger: JobLedger, jobs: int, after: Callable[[int], None]) -> list[float]:
    """Runs ``jobs`` jobs through the lifecycle; ``after(position)`` follows each command."""
    latencies: list[float] = []

    def command(method: Callable[..., CommandResult], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = method(*args, **kwargs)
        latencies.append(time.perf_counter() - started)
        after(result.position)
        return result

    for index in range(jobs):
        job_id = command(
            ledger.create_job,
            job_type="import-csv", data={"n": index}, total_items=TOTAL_ITEMS, actor="bench",
        ).job.id  # fmt: skip
        command(ledger.start_job, job_id, actor="worker")
        for step in range(1, PROGRESS_UPDATES + 1):
            processed = step * TOTAL_ITEMS // (PROGRESS_UPDATES + 1)
            command(ledger.update_progress, job_id, processed, actor="worker")
        command(ledger.complete_job, job_id, actor="worker")
    return latencies


def _lags(commits: list[tuple[int, float]], applied: list[tuple[int, float]]) -> list[float]:
    """For each commit, the time until the first view transaction at or past its position."""
    positions = [position for position, _ in applied]
    lags = []
    for position, committed in commits:
        index = bisect.bisect_left(positions, position)
        lags.append(max(applied[index][1] - committed, 0.0))
    return lags


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3
