"""Rebuild: ``projections.rebuild`` of 1,000,000 events against a raw SQL projector, same run.

History: about 77,000 jobs x 13 events (create, start, 10 progress reports or errors, complete
or fail), 1,000 jobs in flight at a time so their events interleave as under real load (100,000
events with ``--quick``). The domain's commands build the events; ``JobLedger.save`` records
them 5,000 events per transaction (writing is not timed).

Measured, each in a fresh child process so its peak RSS is its own, on SQLite and on PostgreSQL:

- jobledger: ``projections.rebuild`` into a fresh view: shadow table in batches of 500 events
  per transaction, indexes built at the end, atomic swap.
- reference: plain sqlite3 / psycopg: read the events table 500 rows at a time, ``json.loads``
  each event, one parameterised INSERT or UPDATE per event (progress computed in SQL), runs of
  consecutive events of one kind sent with ``executemany`` (pipelined by psycopg), the position
  in the same transaction; the same table, indexes built at the end; counts by GROUP BY at the end.

Figures: events/s (ratio = jobledger / raw; target >= 0.6) and peak RSS in MiB (ratio =
jobledger / raw; target: jobledger <= 300 MiB).
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg

from bench.results import Figure
from bench.support import PostgresUnavailable, postgres_database, sqlite_directory
from domain.job import Job
from domain.ledger import JobLedger
from stores import Store

EVENTS = 1_000_000
QUICK_EVENTS = 100_000
IN_FLIGHT = 1_000
INSERT_BATCH = 5_000
BATCH = 500
SMALL_POOL = {"POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "2"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run(quick: bool) -> list[Figure]:
    events = QUICK_EVENTS if quick else EVENTS
    figures: list[Figure] = []
    with sqlite_directory() as directory:
        url = f"sqlite:///{directory / 'jobledger.db'}"
        figures += measure("sqlite", url, events, raw_target=str(directory / "raw.db"))
    try:
        with postgres_database() as url:
            figures += measure("postgresql", url, events, raw_target=url)
    except PostgresUnavailable as error:
        print(f"rebuild: PostgreSQL skipped: {error}")
    return figures


def measure(store: str, url: str, events: int, raw_target: str) -> list[Figure]:
    started = time.perf_counter()
    with closing(JobLedger(env={**Store.from_url(url).ledger_env(), **SMALL_POOL})) as ledger:
        write_history(ledger, events)
        table = ledger.recorder.events_table_name  # type: ignore[attr-defined]
        head = ledger.head()
    print(f"rebuild: {store}: wrote {head:,} events in {time.perf_counter() - started:.0f} s")
    sides = {}
    order = ("raw", "jobledger") if store == "sqlite" else ("jobledger", "raw")
    for side in order:
        result = _in_child(side, store, url, table, raw_target)
        sides[side] = result
        print(
            f"rebuild: {store} {side}: {result['events']:,} events in {result['seconds']:.1f} s "
            f"({result['events'] / result['seconds']:,.0f} events/s), "
            f"peak RSS {result['rss_mib']:.0f} MiB"
        )
        assert result["events"] == head, result
    ours, raw = sides["jobledger"], sides["raw"]
    label = f"{events:,} events"
    return [
        Figure.compare(
            f"rebuild {store}: events/s, {label} (target >= 0.6x)",
            ours["events"] / ours["seconds"],
            raw["events"] / raw["seconds"],
            "events/s",
        ),
        Figure.compare(
            f"rebuild {store}: peak RSS (target <= 300 MiB)", ours["rss_mib"], raw["rss_mib"], "MiB"
        ),
    ]


def write_history(ledger: JobLedger, events: int) -> None:
    """About ``events`` events: 13 per job, ``IN_FLIGHT`` jobs interleaved, bulk inserted."""
    rng = random.Random(7)
    in_flight: list[tuple[Job, list[int]]] = []
    pending: list[Any] = []
    written = 0
    while written < events or in_flight:
        if written < events and len(in_flight) < IN_FLIGHT:
            job = Job.create(
                job_id=uuid4(), job_type=rng.choice(("import", "export", "geocode", "report")),
                data={"source": "bench"}, total_items=1_000, actor=f"user-{rng.randrange(50)}",
            )  # fmt: skip
            in_flight.append((job, [0]))
        else:
            index = rng.randrange(len(in_flight))
            job, steps = in_flight[index]
            _step(job, steps, rng)
            if job.status.is_terminal:
                in_flight[index] = in_flight[-1]
                in_flight.pop()
        new_events = job.collect_events()
        pending += new_events
        written += len(new_events)
        if len(pending) >= INSERT_BATCH:
            ledger.save(*pending)
            pending = []
    if pending:
        ledger.save(*pending)


def _step(job: Job, steps: list[int], rng: random.Random) -> None:
    steps[0] += 1
    step = steps[0]
    if step == 1:
        job.start(actor="worker")
    elif step <= 11:
        if rng.random() < 0.05:
            job.log_error(f"item {job.processed_items} failed", str(step), actor="worker")
        else:
            job.update_progress(step * 90, actor="worker")
    elif rng.random() < 0.05:
        job.fail("gave up", actor="worker", retry=False)
    else:
        job.complete({"rows": 1_000}, actor="worker")


def _in_child(side: str, store: str, url: str, table: str, raw_target: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(
        target=_child, args=(results, side, store, url, table, raw_target), daemon=True
    )
    process.start()
    result: dict[str, Any] = results.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"rebuild {side} on {store} failed: {result['error']}")
    return result


def _child(results: Any, side: str, store: str, url: str, table: str, raw_target: str) -> None:
    try:
        started = time.perf_counter()
        if side == "jobledger":
            events = _jobledger_rebuild(url)
        elif store == "sqlite":
            events = _raw_sqlite(Store.from_url(url).path, table, Path(raw_target))  # type: ignore[arg-type]
        else:
            events = _raw_postgres(raw_target, table)
        seconds = time.perf_counter() - started
        results.put({"events": events, "seconds": seconds, "rss_mib": _peak_rss_mib()})
    except Exception as error:
        results.put({"error": repr(error)})


def _peak_rss_mib() -> float:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` would count the parent's
    pages that the child mapped between fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _jobledger_rebuild(url: str) -> int:
    from projections import open_view, rebuild

    with closing(JobLedger(env={**Store.from_url(url).ledger_env(), **SMALL_POOL})) as ledger:
        view = open_view(Store.from_url(url))
        try:
            report = rebuild(ledger, view, batch_size=BATCH)
        finally:
            view.close()
    return report.events


COLUMNS = (
    "id, job_type, status, created_by, total_items, processed_items, progress, error_count, "
    "last_error, created_at, started_at, completed_at, updated_at, version"
)
INDEXES = (
    "status, created_at, id",
    "job_type, status, created_at, id",
    "created_by, status, created_at, id",
    "job_type, created_by, status, created_at, id",
)
PROGRESS_SQL = "CASE WHEN {t} IS NULL OR {t} = 0 THEN 0 ELSE MIN({p} * 100 / {t}, 99) END"


def _raw_sqlite(events_path: Path, table: str, raw_path: Path) -> int:
    """The reference projector on plain sqlite3."""
    progress = PROGRESS_SQL.format(p=":p", t=":t")
    statements = {
        "Created": f"INSERT INTO raw_summary ({COLUMNS}) VALUES "
        "(:id, :type, 'pending', :actor, :t, 0, 0, 0, NULL, :at, NULL, NULL, :at, :v)",
        "Started": "UPDATE raw_summary SET status = 'processing', started_at = :at, "
        "updated_at = :at, version = :v WHERE id = :id",
        "ProgressUpdated": f"UPDATE raw_summary SET processed_items = :p, total_items = :t, "
        f"progress = {progress}, updated_at = :at, version = :v WHERE id = :id",
        "ErrorLogged": "UPDATE raw_summary SET error_count = error_count + 1, last_error = :m, "
        "updated_at = :at, version = :v WHERE id = :id",
        "Completed": "UPDATE raw_summary SET status = 'completed', progress = 100, "
        "completed_at = :at, updated_at = :at, version = :v WHERE id = :id",
        "Failed": "UPDATE raw_summary SET status = 'failed', completed_at = :at, "
        "updated_at = :at, version = :v WHERE id = :id",
        "Cancelled": "UPDATE raw_summary SET status = 'cancelled', completed_at = :at, "
        "updated_at = :at, version = :v WHERE id = :id",
    }
    source = sqlite3.connect(events_path)
    target = sqlite3.connect(raw_path, isolation_level=None)
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    target.execute("PRAGMA cache_size=-16000")
    target.execute(
        "CREATE TABLE raw_summary (id BLOB PRIMARY KEY, job_type TEXT NOT NULL, "
        "status TEXT NOT NULL, created_by TEXT NOT NULL, total_items INTEGER, "
        "processed_items INTEGER NOT NULL, progress INTEGER NOT NULL, "
        "error_count INTEGER NOT NULL, last_error TEXT, created_at INTEGER NOT NULL, "
        "started_at INTEGER, completed_at INTEGER, updated_at INTEGER NOT NULL, "
        "version INTEGER NOT NULL)"
    )
    target.execute("CREATE TABLE raw_position (position INTEGER NOT NULL)")
    target.execute("INSERT INTO raw_position VALUES (0)")
    position = events = 0
    while rows := source.execute(
        f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
        "WHERE rowid > ? ORDER BY rowid LIMIT ?",
        (position, BATCH),
    ).fetchall():
        target.execute("BEGIN")
        runs = _runs(
            (
                statements[topic.rsplit(".", 1)[-1]],
                {
                    "id": bytes.fromhex(originator_id),
                    "v": version,
                    "at": (datetime.fromisoformat(e["timestamp"]["_data_"]) - EPOCH) // _US,
                    "type": e.get("job_type"),
                    "actor": e.get("actor"),
                    "t": e.get("total_items"),
                    "p": e.get("processed_items"),
                    "m": e.get("message"),
                },
            )
            for _, originator_id, version, topic, state in rows
            for e in (json.loads(state),)
        )
        for statement, params in runs:
            target.executemany(statement, params)
        position = rows[-1][0]
        target.execute("UPDATE raw_position SET position = ?", (position,))
        target.execute("COMMIT")
        events += len(rows)
    for n, columns in enumerate(INDEXES):
        target.execute(f"CREATE INDEX raw_index_{n} ON raw_summary ({columns})")
    target.execute(
        "CREATE TABLE raw_counts AS SELECT 'status' AS dimension, status AS key, count(*) AS n "
        "FROM raw_summary GROUP BY status UNION ALL "
        "SELECT 'type', job_type, count(*) FROM raw_summary GROUP BY job_type"
    )
    source.close()
    target.close()
    return events


_US = timedelta(microseconds=1)


def _runs(statements: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[Any]]]:
    """Consecutive events of one kind, grouped for ``executemany`` (their order kept)."""
    runs: list[tuple[str, list[Any]]] = []
    for statement, params in statements:
        if runs and runs[-1][0] is statement:
            runs[-1][1].append(params)
        else:
            runs.append((statement, [params]))
    return runs


def _raw_postgres(url: str, table: str) -> int:
    """The reference projector on plain psycopg 3 (pipelined statements, one commit per batch)."""
    progress = PROGRESS_SQL.format(p="%(p)s::bigint", t="%(t)s::bigint").replace("MIN(", "LEAST(")
    statements = {
        "Created": f"INSERT INTO raw_summary ({COLUMNS}) VALUES (%(id)s, %(type)s, 'pending', "
        "%(actor)s, %(t)s, 0, 0, 0, NULL, %(at)s, NULL, NULL, %(at)s, %(v)s)",
        "Started": "UPDATE raw_summary SET status = 'processing', started_at = %(at)s, "
        "updated_at = %(at)s, version = %(v)s WHERE id = %(id)s",
        "ProgressUpdated": "UPDATE raw_summary SET processed_items = %(p)s, total_items = %(t)s, "
        f"progress = {progress}, updated_at = %(at)s, version = %(v)s WHERE id = %(id)s",
        "ErrorLogged": "UPDATE raw_summary SET error_count = error_count + 1, "
        "last_error = %(m)s, updated_at = %(at)s, version = %(v)s WHERE id = %(id)s",
        "Completed": "UPDATE raw_summary SET status = 'completed', progress = 100, "
        "completed_at = %(at)s, updated_at = %(at)s, version = %(v)s WHERE id = %(id)s",
        "Failed": "UPDATE raw_summary SET status = 'failed', completed_at = %(at)s, "
        "updated_at = %(at)s, version = %(v)s WHERE id = %(id)s",
        "Cancelled": "UPDATE raw_summary SET status = 'cancelled', completed_at = %(at)s, "
        "updated_at = %(at)s, version = %(v)s WHERE id = %(id)s",
    }
    with psycopg.connect(url, autocommit=True) as db, psycopg.connect(url) as source:
        db.execute("SET synchronous_commit = off")
        db.execute(
            "CREATE TABLE raw_summary (id uuid PRIMARY KEY, job_type text NOT NULL, "
            "status text NOT NULL, created_by text NOT NULL, total_items bigint, "
            "processed_items bigint NOT NULL, progress smallint NOT NULL, "
            "error_count bigint NOT NULL, last_error text, created_at timestamptz NOT NULL, "
            "started_at timestamptz, completed_at timestamptz, updated_at timestamptz NOT NULL, "
            "version bigint NOT NULL) WITH (fillfactor = 85)"
        )
        db.execute("CREATE TABLE raw_position (position bigint NOT NULL)")
        db.execute("INSERT INTO raw_position VALUES (0)")
        position = events = 0
        while rows := source.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
            (position, BATCH),
        ).fetchall():
            source.commit()
            runs = _runs(
                (
                    statements[topic.rsplit(".", 1)[-1]],
                    {
                        "id": originator_id,
                        "v": version,
                        "at": e["timestamp"]["_data_"],
                        "type": e.get("job_type"),
                        "actor": e.get("actor"),
                        "t": e.get("total_items"),
                        "p": e.get("processed_items"),
                        "m": e.get("message"),
                    },
                )
                for _, originator_id, version, topic, state in rows
                for e in (json.loads(state),)
            )
            with db.transaction(), db.cursor() as cursor:
                for statement, params in runs:
                    cursor.executemany(statement, params)
                position = rows[-1][0]
                db.execute("UPDATE raw_position SET position = %s", (position,))
            events += len(rows)
        for n, columns in enumerate(INDEXES):
            db.execute(f"CREATE INDEX raw_index_{n} ON raw_summary ({columns})")
        db.execute(
            "CREATE TABLE raw_counts AS SELECT 'status' AS dimension, status AS key, "
            "count(*) AS n FROM raw_summary GROUP BY status UNION ALL "
            "SELECT 'type', job_type, count(*) FROM raw_summary GROUP BY job_type"
        )
        db.execute("ANALYZE raw_summary")
    return events
