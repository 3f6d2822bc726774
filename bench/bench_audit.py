"""Audit reads on a job with 10,000 events: its first history page and its state at mid-life.

One job is driven through 10,000 events (2,000 with ``--quick``) by the domain's own commands and
saved 100 events at a time through ``JobLedger``, so snapshots (every 100 versions) and the time
index are written exactly as in production. Measured in process, 300 times each (50 with
``--quick``) after a warm-up, on SQLite and PostgreSQL:

- ``history page``: ``ledger.history(job_id, limit=100)``, the HTTP API's default first page,
  events decoded into audit entries.
- ``as-of mid-life``: ``ledger.job_as_of(job_id, at=T)`` with T the time of event 5,099 (1,099
  with ``--quick``): the time index lookup (the newest indexed version then: 5,000), the
  snapshot there, and the 99 events up to the next indexed version, folded while at or before T:
  the most a lookup ever reads.

Reference: the same rows read with plain SQL on a raw sqlite3 / psycopg connection and not
decoded: the first 100 event rows; for the as-of lookup, the time index query, the nearest
snapshot row and the event rows up to the next indexed version. Ratio = jobledger / raw.
Target: p99 <= 10 ms each.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg

from bench.results import Figure
from bench.support import PostgresUnavailable, postgres_database, sqlite_directory
from domain.audit import TIME_INDEX_STRIDE
from domain.job import Job
from domain.ledger import JobLedger
from stores import Store

EVENTS = 10_000
QUICK_EVENTS = 2_000
REPEATS = 300
QUICK_REPEATS = 50
WARM_UP = 20
PAGE = 100
EVENTS_PER_SAVE = 100
#: The middle event is 99 versions past a snapshot: the most events an as-of lookup has to fold.
MIDDLE_OFFSET = 99


def run(quick: bool) -> list[Figure]:
    events, repeats = (QUICK_EVENTS, QUICK_REPEATS) if quick else (EVENTS, REPEATS)
    figures: list[Figure] = []
    with sqlite_directory() as directory:
        path = directory / "events.db"
        ledger = JobLedger(env=Store.from_url(f"sqlite:///{path}").ledger_env())
        try:
            job_id, middle = _write_job(ledger, events)
            with sqlite3.connect(path) as raw:
                figures += _measure("sqlite", ledger, job_id, middle, repeats,
                                    _sqlite_raw(raw, job_id, middle))
        finally:
            ledger.close()
    try:
        with postgres_database() as url:
            ledger = JobLedger(env=Store.from_url(url).ledger_env())
            try:
                job_id, middle = _write_job(ledger, events)
                with psycopg.connect(url) as raw_pg:
                    figures += _measure("postgresql", ledger, job_id, middle, repeats,
                                        _postgres_raw(raw_pg, job_id, middle))
            finally:
                ledger.close()
    except PostgresUnavailable as error:
        print(f"audit: PostgreSQL skipped: {error}")
    return figures


def _write_job(ledger: JobLedger, events: int) -> tuple[UUID, datetime]:
    """A job with ``events`` events (created, started, progress...); returns it and mid-life."""
    job = Job.create(job_id=uuid4(), job_type="export", data={"rows": events},
                     total_items=events, actor="bench")
    job.start(actor="worker-1")
    for processed in range(1, events - 1):
        job.update_progress(processed, actor="worker-1")
        if len(job.pending_events) >= EVENTS_PER_SAVE:
            ledger.save(job)
    ledger.save(job)
    middle = ledger.history(job.id, from_version=events // 2 + MIDDLE_OFFSET, limit=1)[0].at
    return job.id, middle


def _measure(
    store: str,
    ledger: JobLedger,
    job_id: UUID,
    middle: datetime,
    repeats: int,
    raw: tuple[Callable[[], Any], Callable[[], Any]],
) -> list[Figure]:
    expected = ledger.job_as_of(job_id, at=middle).version

    def page() -> None:
        assert len(ledger.history(job_id, limit=PAGE)) == PAGE

    def as_of() -> None:
        assert ledger.job_as_of(job_id, at=middle).version == expected

    figures: list[Figure] = []
    cases = (("history page", page, raw[0]), ("as-of mid-life", as_of, raw[1]))
    for name, ours, reference in cases:
        ours_times = _timings(ours, repeats)
        raw_times = _timings(reference, repeats)
        for label, quantile in (("p50", 0.5), ("p99", 0.99)):
            figures.append(Figure.compare(
                f"audit {store} {name} {label}",
                _quantile(ours_times, quantile), _quantile(raw_times, quantile), "ms",
            ))
    return figures


def _sqlite_raw(
    raw: sqlite3.Connection, job_id: UUID, middle: datetime
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    key = job_id.hex
    at = middle.isoformat(timespec="microseconds")

    def page() -> Any:
        return raw.execute(
            "SELECT originator_version, topic, state FROM stored_events "
            "WHERE originator_id = ? ORDER BY originator_version LIMIT ?", (key, PAGE),
        ).fetchall()

    def as_of() -> Any:
        (version,) = raw.execute(
            "SELECT MAX(originator_version) FROM event_timestamps "
            "WHERE originator_id = ? AND timestamp <= ?", (key, at),
        ).fetchone()
        snapshot = raw.execute(
            "SELECT originator_version, topic, state FROM stored_snapshots "
            "WHERE originator_id = ? AND originator_version <= ? "
            "ORDER BY originator_version DESC LIMIT 1", (key, version),
        ).fetchone()
        return raw.execute(
            "SELECT originator_version, topic, state FROM stored_events WHERE originator_id = ? "
            "AND originator_version > ? AND originator_version < ? ORDER BY originator_version",
            (key, snapshot[0], _next_indexed(version)),
        ).fetchall()

    return page, as_of


def _postgres_raw(
    raw: psycopg.Connection[Any], job_id: UUID, middle: datetime
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    raw.autocommit = True

    def page() -> Any:
        return raw.execute(
            "SELECT originator_version, topic, state FROM jobledger_events "
            "WHERE originator_id = %s ORDER BY originator_version LIMIT %s", (job_id, PAGE),
            prepare=True,
        ).fetchall()

    def as_of() -> Any:
        row = raw.execute(
            "SELECT MAX(originator_version) FROM event_timestamps "
            "WHERE originator_id = %s AND timestamp <= %s", (job_id, middle), prepare=True,
        ).fetchone()
        assert row is not None
        snapshot = raw.execute(
            "SELECT originator_version, topic, state FROM jobledger_snapshots "
            "WHERE originator_id = %s AND originator_version <= %s "
            "ORDER BY originator_version DESC LIMIT 1", (job_id, row[0]), prepare=True,
        ).fetchone()
        assert snapshot is not None
        return raw.execute(
            "SELECT originator_version, topic, state FROM jobledger_events "
            "WHERE originator_id = %s AND originator_version > %s AND originator_version < %s "
            "ORDER BY originator_version", (job_id, snapshot[0], _next_indexed(row[0])),
            prepare=True,
        ).fetchall()

    return page, as_of


def _next_indexed(version: int) -> int:
    return (version // TIME_INDEX_STRIDE + 1) * TIME_INDEX_STRIDE


def _timings(operation: Callable[[], Any], repeats: int) -> list[float]:
    for _ in range(WARM_UP):
        operation()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        operation()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _quantile(times: list[float], quantile: float) -> float:
    if quantile == 0.5:
        return statistics.median(times)
    return statistics.quantiles(times, n=100, method="inclusive")[round(quantile * 100) - 1]
