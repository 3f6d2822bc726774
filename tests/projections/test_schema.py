"""The view's tables in SQLite and PostgreSQL: upgrades and query plans.

A view file or database an earlier version created (without the worker columns) is dropped and
recreated at position 0 when the view opens, and the runner replays the log into it. The claim
path's and the sweeper's reads use their partial indexes, in index order: claims never sort
(but to merge the ranges of several types), and none of them scans the table.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from typing import Any
from uuid import uuid4

import psycopg

from domain.job import JobStatus
from domain.ledger import JobLedger
from projections import JobQuery, JobSummaryView, ProjectionRunner
from projections import verify as verify_view
from projections.postgres import PostgresSummaryView
from projections.sql import (
    claimable_statement,
    expired_leases_statement,
    list_statement,
    next_lease_expiry_statement,
    next_run_at_statement,
)
from projections.sqlite import RUN_AT_FILTER, SQLiteSummaryView
from tests.conftest import on_backends
from tests.projections.conftest import MakeView
from tests.projections.helpers import T0, folded, job_ids_in, random_command

SQL_STORES = on_backends("sqlite", "postgresql")

#: ``job_summary`` as the version before workers created it.
OLD_SQLITE_TABLE = (
    "CREATE TABLE job_summary (id BLOB PRIMARY KEY, job_type TEXT NOT NULL, status TEXT NOT NULL, "
    "created_by TEXT NOT NULL, total_items INTEGER, processed_items INTEGER NOT NULL, "
    "progress INTEGER NOT NULL, error_count INTEGER NOT NULL, last_error TEXT, "
    "created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER, "
    "updated_at INTEGER NOT NULL, version INTEGER NOT NULL)"
)
OLD_POSTGRES_TABLE = (
    "CREATE TABLE job_summary (id uuid PRIMARY KEY, job_type text NOT NULL, status text NOT NULL, "
    "created_by text NOT NULL, total_items bigint, processed_items bigint NOT NULL, "
    "progress smallint NOT NULL, error_count bigint NOT NULL, last_error text, "
    "created_at timestamptz NOT NULL, started_at timestamptz, completed_at timestamptz, "
    "updated_at timestamptz NOT NULL, version bigint NOT NULL)"
)
OLD_ROW = (
    "INSERT INTO job_summary VALUES ({id}, 'stale', 'pending', 'x', NULL, 0, 0, 0, NULL, "
    "{time}, NULL, NULL, {time}, 1)"
)


@contextmanager
def sql(view: JobSummaryView[Any]) -> Iterator[Callable[..., list[Any]]]:
    """Runs statements on the view's own database, behind its back."""
    if isinstance(view, SQLiteSummaryView):
        with closing(sqlite3.connect(view.path, isolation_level=None)) as db:
            yield lambda statement, params=(): db.execute(statement, params).fetchall()
    else:
        assert isinstance(view, PostgresSummaryView)
        with psycopg.connect(**view.conninfo, autocommit=True) as pg:

            def run(statement: str, params: Any = ()) -> list[Any]:
                cursor = pg.execute(statement, params)
                return cursor.fetchall() if cursor.description else []

            yield run


def history(ledger: JobLedger, commands: int) -> list[Any]:
    rng = random.Random(7)
    job_ids: list[Any] = []
    for _ in range(commands):
        random_command(ledger, rng, job_ids)
    return job_ids


@SQL_STORES
def test_a_view_an_earlier_version_created_is_replayed_from_the_log(
    backend: str, ledger: JobLedger, make_view: MakeView
) -> None:
    job_ids = history(ledger, 120)
    old = make_view()
    ProjectionRunner(ledger, old).catch_up()
    with sql(old) as run:
        run("DROP TABLE job_summary")
        if backend == "sqlite":
            run(OLD_SQLITE_TABLE)
            run("CREATE INDEX js_0ld0ld00_status ON job_summary (status, created_at, id)")
            run(OLD_ROW.format(id="randomblob(16)", time=0))
        else:
            run(OLD_POSTGRES_TABLE)
            run("CREATE INDEX js_0ld0ld00_status ON job_summary (status, created_at, id)")
            run(OLD_ROW.format(id="gen_random_uuid()", time="now()"))
    assert old.position() == ledger.head()
    old.close()

    view = make_view()

    assert view.position() == 0
    assert list(view.rows()) == []
    assert sum(view.counts().by_status.values()) == 0
    assert ProjectionRunner(ledger, view).catch_up() == ledger.head()
    assert {row.id: row for row in view.rows()} == folded(ledger, job_ids)
    assert verify_view(ledger, view).ok
    assert view.next_run_at(None) is not None
    reopened = make_view()
    assert reopened.position() == ledger.head()
    assert job_ids_in(reopened) == job_ids_in(view)


def status_of(n: str) -> str:
    """Most rows finished, as in a store that has run for a while; n = 2 processing, leased."""
    return (
        f"CASE {n} WHEN 0 THEN 'pending' WHEN 1 THEN 'retrying' WHEN 2 THEN 'processing' "
        "WHEN 3 THEN 'failed' ELSE 'completed' END"
    )


def fill(view: JobSummaryView[Any], backend: str, rows: int) -> None:
    """Synthetic rows of 7 types and 5 priorities, due over 1000 s (times: T0 + i s)."""
    with sql(view) as run:
        if backend == "sqlite":
            run(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO job_summary SELECT randomblob(16), 't' || (i % 7), "
                f"{status_of('i % 20')}, "
                "'alice', NULL, 0, 0, 0, NULL, i, NULL, NULL, i, 1, i % 5 - 2, i % 1000, 1, 3, "
                "CASE WHEN i % 20 = 2 THEN i END, 0 FROM n",
                (rows,),
            )
        else:
            run(
                "INSERT INTO job_summary SELECT gen_random_uuid(), 't' || mod(i, 7), "
                f"{status_of('mod(i, 20)')}, 'alice', NULL, 0, 0, 0, NULL, "
                "%s + i * interval '1 s', NULL, NULL, %s, 1, mod(i, 5) - 2, "
                "%s + mod(i, 1000) * interval '1 s', 1, 3, "
                "CASE WHEN mod(i, 20) = 2 THEN %s + i * interval '1 s' END, false "
                "FROM generate_series(1, %s) AS i",
                (T0, T0, T0, T0, rows),
            )
            run("ANALYZE job_summary")


def plan(view: JobSummaryView[Any], statement: str, params: Any) -> str:
    with sql(view) as run:
        if isinstance(view, SQLiteSummaryView):
            return "\n".join(r[3] for r in run(f"EXPLAIN QUERY PLAN {statement}", params))
        return "\n".join(r[0] for r in run(f"EXPLAIN {statement}", params))


def indexes_used(text: str, suffix: str) -> int:
    return len(re.findall(rf"js_[0-9a-f]+_{suffix}\b", text))


def scans_the_table(text: str) -> bool:
    return bool(re.search(r"^\s*(->\s+)?Seq Scan|SCAN job_summary$", text, re.MULTILINE))


def sorts(text: str) -> bool:
    return bool(re.search(r"TEMP B-TREE|^\s*(->\s+)?(Incremental )?Sort  \(", text, re.MULTILINE))


@SQL_STORES
def test_claims_and_leases_read_their_partial_indexes_in_order(
    backend: str, view: JobSummaryView[Any]
) -> None:
    """SQLite is planned without statistics (the view never runs ANALYZE), PostgreSQL with."""
    fill(view, backend, 20_000)
    sqlite = backend == "sqlite"
    mark = "?" if sqlite else "%s"
    now = 500 if sqlite else T0 + timedelta(seconds=500)
    skip = [uuid4().bytes if sqlite else uuid4()]
    run_at = RUN_AT_FILTER if sqlite else "run_at"

    def claim(types: list[str] | None, skipped: list[Any]) -> tuple[str, list[Any]]:
        return claimable_statement("job_summary", now, types, 10, skipped, mark, run_at)

    plans = {
        "claim": plan(view, *claim(None, [])),
        "claim_type": plan(view, *claim(["t1"], skip)),
        "due": plan(view, *next_run_at_statement("job_summary", None, mark)),
        "due_type": plan(view, *next_run_at_statement("job_summary", ["t1", "t2"], mark)),
        "lease": plan(view, expired_leases_statement("job_summary", mark), (now, 10)),
        "next_lease": plan(view, next_lease_expiry_statement("job_summary"), ()),
    }
    for name, text in plans.items():
        assert indexes_used(text, "lease" if name == "next_lease" else name), (name, text)
        assert not scans_the_table(text) and not sorts(text), (name, text)
    merged = plan(view, *claim(["t1", "t2", "t3"], []))
    assert indexes_used(merged, "claim_type") == 3 and not scans_the_table(merged), merged


@SQL_STORES
def test_a_list_of_retrying_jobs_reads_one_index_range_per_status(
    backend: str, view: JobSummaryView[Any]
) -> None:
    """One index range per status (PostgreSQL may pick the ``created`` index, filtered, for a
    status that holds most rows: statistics say it ends sooner)."""
    fill(view, backend, 20_000)
    sqlite = backend == "sqlite"

    def uid(job_id: Any) -> Any:
        return job_id.bytes if sqlite else job_id

    mark = "?" if sqlite else "%s"
    retrying = JobQuery(statuses=(JobStatus.RETRYING,))
    one = plan(view, *list_statement("job_summary", retrying, None, mark, uid, uid))
    of_type = JobQuery(job_type="t1")
    every = plan(view, *list_statement("job_summary", of_type, None, mark, uid, uid))

    assert indexes_used(one, "status") == 1 and not sorts(one), one
    assert indexes_used(every, r"\w+") == len(JobStatus), every
    assert not scans_the_table(one) and not scans_the_table(every)
