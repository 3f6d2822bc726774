"""List queries on a ``job_summary`` view of 1,000,000 rows: p50 and p99 latency, same run.

The view (SQLite file; PostgreSQL tables) is filled directly, not by the projection: 1,000,000
rows (100,000 with ``--quick``) over 30 days, 10 job types, 1,000 owners, statuses 70% completed,
10% processing, 10% pending, 5% failed, 5% cancelled; written into the view's shadow tables,
indexed, and swapped in, exactly as a rebuild does.

Measured, 300 times each (10 for the deep offset) after a warm-up: the first page unfiltered,
by status, by type and status, and the page at depth 100,000 (10,000 with ``--quick``) by
cursor and by offset, all ``limit=50``, newest first, through ``view.query`` (validation, cursor
check, rows as ``JobSummary``).

Reference: the same SQL statement with the same parameters on a plain sqlite3 / psycopg
connection, rows fetched as tuples (a cursor's key decoded once, outside the timing). Ratio =
jobledger / raw (lower is better). Target: p99 <= 5 ms for all but the offset at depth, which
shows why cursors exist.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from bench.results import Figure
from bench.support import PostgresUnavailable, postgres_database, sqlite_directory
from domain.job import JobStatus
from projections import JobQuery, JobSummaryView, PostgresSummaryView, SQLiteSummaryView
from projections.log import Entry
from projections.projection import JobSummaryProjection
from projections.query import EPOCH, Keyset
from projections.sql import COLUMNS, list_statement
from projections.view import SHADOW_NAME
from stores import Store

ROWS = 1_000_000
QUICK_ROWS = 100_000
DEPTH = 100_000
QUICK_DEPTH = 10_000
REPEATS = 300
SLOW_REPEATS = 10
START = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = [JobStatus.COMPLETED] * 14 + [JobStatus.PROCESSING] * 2 + [JobStatus.PENDING] * 2
STATUSES += [JobStatus.FAILED, JobStatus.CANCELLED]
_US = timedelta(microseconds=1)


def run(quick: bool) -> list[Figure]:
    rows, depth = (QUICK_ROWS, QUICK_DEPTH) if quick else (ROWS, DEPTH)
    figures: list[Figure] = []
    with sqlite_directory() as directory:
        view = SQLiteSummaryView(directory / "jobs.view.db")
        try:
            _fill_sqlite(view, rows)
            with sqlite3.connect(view.path) as raw:
                figures += measure("sqlite", view, depth, _sqlite_raw(raw))
        finally:
            view.close()
    try:
        with postgres_database() as url:
            store = Store.from_url(url)
            conninfo = {"host": store.host, "port": store.port, "user": store.user,
                        "password": store.password, "dbname": store.dbname}  # fmt: skip
            view_pg = PostgresSummaryView(conninfo)
            try:
                _fill_postgres(view_pg, url, rows)
                with psycopg.connect(url, options="-c timezone=UTC") as raw_pg:
                    figures += measure("postgresql", view_pg, depth, _postgres_raw(raw_pg))
            finally:
                view_pg.close()
    except PostgresUnavailable as error:
        print(f"queries: PostgreSQL skipped: {error}")
    return figures


RawQuery = Callable[[JobQuery, Keyset | None], Any]


def measure(store: str, view: JobSummaryView[Any], depth: int, raw: RawQuery) -> list[Figure]:
    deep_row = view.query(JobQuery(offset=depth - 1, limit=1)).items[0]
    cursor = view.cursor_codec.encode(JobQuery(), Keyset(deep_row.created_at, deep_row.id))
    cases = [
        ("first page", JobQuery(), REPEATS),
        ("by status", JobQuery(statuses=(JobStatus.FAILED,)), REPEATS),
        ("by type and status", JobQuery(job_type="type-3", statuses=("processing",)), REPEATS),
        (f"depth {depth:,} by cursor", JobQuery(cursor=cursor), REPEATS),
        (f"depth {depth:,} by offset", JobQuery(offset=depth), SLOW_REPEATS),
    ]
    figures = []
    for name, query, repeats in cases:
        assert len(view.query(query).items) == 50, name
        after = view.cursor_codec.decode(query)
        ours, reference = _alternate(
            lambda q=query: view.query(q), lambda q=query, a=after: raw(q, a), repeats
        )
        for label, quantile in (("p50", 0.5), ("p99", 0.99)):
            target = " (target <= 5 ms)" if label == "p99" and "offset" not in name else ""
            figures.append(
                Figure.compare(
                    f"queries {store}: {name} {label}{target}",
                    _quantile(ours, quantile) * 1e3,
                    _quantile(reference, quantile) * 1e3,
                    "ms",
                )
            )
        print(
            f"queries: {store} {name}: p50 {_quantile(ours, 0.5) * 1e3:.2f} ms, "
            f"p99 {_quantile(ours, 0.99) * 1e3:.2f} ms "
            f"(raw p99 {_quantile(reference, 0.99) * 1e3:.2f} ms)"
        )
    return figures


def _alternate(
    ours: Callable[[], Any], raw: Callable[[], Any], repeats: int
) -> tuple[list[float], list[float]]:
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(3, repeats // 10)):
        ours()
        raw()
    for index in range(repeats):
        pair = ((0, ours), (1, raw)) if index % 2 == 0 else ((1, raw), (0, ours))
        for side, call in pair:
            started = time.perf_counter()
            call()
            times[side].append(time.perf_counter() - started)
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rows(count: int) -> list[tuple[Any, ...]]:
    """Summary rows as tuples in ``COLUMNS`` order, times as datetimes."""
    rng = random.Random(11)
    span = 30 * 24 * 3600 * 1_000_000
    rows = []
    for n in range(count):
        status = rng.choice(STATUSES)
        created = START + timedelta(microseconds=span * n // count + rng.randrange(1000))
        started = created + timedelta(seconds=5) if status is not JobStatus.PENDING else None
        finished = status.is_terminal
        processed = 1_000 if status is JobStatus.COMPLETED else rng.randrange(1_000)
        rows.append((
            UUID(int=rng.getrandbits(128)), f"type-{rng.randrange(10)}", status.value,
            f"user-{rng.randrange(1_000)}", 1_000, processed,
            100 if status is JobStatus.COMPLETED else min(processed // 10, 99),
            0, None, created, started, created + timedelta(minutes=3) if finished else None,
            created + timedelta(minutes=3), 13,
            0, created, 0 if started is None else 1, 3, None, False,
        ))  # fmt: skip
    return rows


def _counts(rows: list[tuple[Any, ...]]) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        for key in (("status", row[2]), ("type", row[1])):
            counts[key] = counts.get(key, 0) + 1
    return [(dimension, key, n) for (dimension, key), n in counts.items()]


def _swap_in(view: JobSummaryView[Any], shadow: JobSummaryView[Any]) -> None:
    def no_events(after: int, limit: int) -> list[Entry]:
        return []

    view.finish_shadow()
    view.swap_in(shadow, no_events, JobSummaryProjection(), up_to=0)


def _fill_sqlite(view: SQLiteSummaryView, count: int) -> None:
    started = time.perf_counter()
    shadow = view.create_shadow()
    rows = _rows(count)
    with sqlite3.connect(view.path) as db:
        marks = ", ".join("?" * len(COLUMNS))
        db.executemany(
            f"INSERT INTO {SHADOW_NAME} ({', '.join(COLUMNS)}) VALUES ({marks})",
            (
                (r[0].bytes, *r[1:9], _us(r[9]), _us(r[10]), _us(r[11]), _us(r[12]), r[13],
                 r[14], _us(r[15]), r[16], r[17], _us(r[18]), int(r[19]))
                for r in rows
            ),
        )
        db.executemany(f"INSERT INTO {SHADOW_NAME}_counts VALUES (?, ?, ?)", _counts(rows))
    _swap_in(view, shadow)
    print(f"queries: sqlite: {count:,} rows in {time.perf_counter() - started:.0f} s")


def _fill_postgres(view: PostgresSummaryView, url: str, count: int) -> None:
    started = time.perf_counter()
    shadow = view.create_shadow()
    rows = _rows(count)
    with psycopg.connect(url) as db:
        with db.cursor().copy(f"COPY {SHADOW_NAME} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with db.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {SHADOW_NAME}_counts VALUES (%s, %s, %s)", _counts(rows)
            )
    _swap_in(view, shadow)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE job_summary")
    print(f"queries: postgresql: {count:,} rows in {time.perf_counter() - started:.0f} s")


def _sqlite_raw(db: sqlite3.Connection) -> RawQuery:
    def query(q: JobQuery, after: Keyset | None) -> Any:
        statement, params = list_statement("job_summary", q, after, "?", _us, _bytes)
        return db.execute(statement, params).fetchall()

    return query


def _postgres_raw(db: psycopg.Connection[Any]) -> RawQuery:
    def query(q: JobQuery, after: Keyset | None) -> Any:
        statement, params = list_statement("job_summary", q, after, "%s", _same, _same)
        rows = db.execute(statement, params).fetchall()
        db.commit()
        return rows

    return query


def _same(value: Any) -> Any:
    return value


def _bytes(job_id: UUID) -> bytes:
    return job_id.bytes


def _us(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // _US
