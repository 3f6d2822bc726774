"""The baseline's storage: one mutable ``jobs`` row per job, and a ``users`` table.

A command is one transaction: lock and read the row, change it in Python, write the whole row
back. SQLite takes the write lock first (``BEGIN IMMEDIATE``, so a read-modify-write never loses
an update), and the writers of one process queue on a lock rather than in SQLite's busy-wait
sleeps (as the eventsourcing library's SQLite pool does); PostgreSQL locks the row
(``SELECT ... FOR UPDATE``). The SQL is written once with
``%s`` placeholders; the SQLite table swaps them for ``?``.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

Row = dict[str, Any]
Change = Callable[[Row], Row]

SQLITE_BUSY_TIMEOUT_SECONDS = 5
SQLITE_CONNECTIONS = 10
POSTGRES_MIN_CONNECTIONS = 10
POSTGRES_MAX_CONNECTIONS = 20
SCHEMA_LOCK_KEY = 0x6A6F62_4352_5544

MUTABLE_COLUMNS = (
    "status", "total_items", "processed_items", "progress", "error_count", "error_log",
    "last_error", "result", "failure_reason", "started_at", "completed_at", "updated_at", "version",
)
COLUMNS = ("id", "type", "data", "created_by", "created_at", *MUTABLE_COLUMNS)
SUMMARY_COLUMNS = tuple(c for c in COLUMNS if c not in ("data", "error_log", "result",
                                                         "failure_reason"))

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, "
    "role TEXT NOT NULL, disabled BOOLEAN NOT NULL, password_hash TEXT NOT NULL, "
    "created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, type TEXT NOT NULL, "
    "status TEXT NOT NULL, data TEXT, total_items INTEGER, processed_items INTEGER NOT NULL, "
    "progress INTEGER NOT NULL, error_count INTEGER NOT NULL, error_log TEXT NOT NULL, "
    "last_error TEXT, result TEXT, failure_reason TEXT, created_by TEXT NOT NULL, "
    "created_at TEXT NOT NULL, started_at TEXT, completed_at TEXT, updated_at TEXT NOT NULL, "
    "version INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS jobs_by_type ON jobs (type, created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (created_by, created_at DESC, id DESC)",
)
INSERT_USER = (
    "INSERT INTO users (id, email, role, disabled, password_hash, created_at) "
    "SELECT %s, %s, %s, %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM users) RETURNING id"
)
SELECT_USER = "SELECT id, email, role, disabled, created_at FROM users WHERE id = %s"
INSERT_JOB = (
    f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)
SELECT_JOB = f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = %s"
UPDATE_JOB = (
    f"UPDATE jobs SET {', '.join(f'{c} = %s' for c in MUTABLE_COLUMNS)} WHERE id = %s"
)


class JobTable(ABC):
    """The baseline's database: users, and one row per job."""

    placeholder = "%s"

    def sql(self, statement: str) -> str:
        return statement.replace("%s", self.placeholder)

    @abstractmethod
    def execute(self, statement: str, params: Sequence[Any] = (), write: bool = False) -> list[Row]:
        """Runs one statement in its own transaction; returns its rows."""

    @abstractmethod
    def change_job(self, job_id: str, change: Change) -> Row | None:
        """Reads the job's row, applies ``change``, writes it back; None when there is no row."""

    @abstractmethod
    def close(self) -> None: ...

    def create_schema(self) -> None:
        for statement in SCHEMA:
            self.execute(statement, write=True)

    def insert_first_user(self, user: Row) -> bool:
        """Stores the first user; False when some user exists already."""
        params = [user[k] for k in ("id", "email", "role", "disabled", "password_hash",
                                    "created_at")]
        return bool(self.execute(INSERT_USER, params, write=True))

    def get_user(self, user_id: str) -> Row | None:
        rows = self.execute(SELECT_USER, (user_id,))
        return rows[0] if rows else None

    def insert_job(self, job: Row) -> None:
        self.execute(INSERT_JOB, [job[c] for c in COLUMNS], write=True)

    def get_job(self, job_id: str) -> Row | None:
        rows = self.execute(SELECT_JOB, (job_id,))
        return rows[0] if rows else None

    def list_jobs(
        self, statuses: Sequence[str], job_type: str | None, created_by: str | None,
        limit: int, offset: int,
    ) -> list[Row]:
        """One page of job summaries, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if statuses:
            where.append(f"status IN ({', '.join(['%s'] * len(statuses))})")
            params += statuses
        if job_type is not None:
            where.append("type = %s")
            params.append(job_type)
        if created_by is not None:
            where.append("created_by = %s")
            params.append(created_by)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        statement = (
            f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM jobs{clause} "
            "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
        )
        return self.execute(statement, [*params, limit, offset])


class SQLiteJobTable(JobTable):
    """The table in a SQLite file: WAL, synchronous=FULL, a small pool of connections."""

    placeholder = "?"

    def __init__(self, path: Path, connections: int = SQLITE_CONNECTIONS) -> None:
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        for _ in range(connections):
            connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False,
                timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            )
            connection.row_factory = _dict_row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            self._pool.put(connection)
        self._connections = connections
        self._writer = threading.Lock()

    @contextmanager
    def _connection(self, write: bool) -> Iterator[sqlite3.Connection]:
        if write and not self._writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("timed out waiting for this process's write lock")
        try:
            connection = self._pool.get(timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
            try:
                yield connection
            finally:
                self._pool.put(connection)
        finally:
            if write:
                self._writer.release()

    def execute(self, statement: str, params: Sequence[Any] = (), write: bool = False) -> list[Row]:
        with self._connection(write) as connection:
            rows: list[Row] = connection.execute(self.sql(statement), params).fetchall()
            return rows

    def change_job(self, job_id: str, change: Change) -> Row | None:
        with self._connection(write=True) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                rows = connection.execute(self.sql(SELECT_JOB), (job_id,)).fetchall()
                if not rows:
                    connection.execute("ROLLBACK")
                    return None
                job = change(rows[0])
                params = [*(job[c] for c in MUTABLE_COLUMNS), job_id]
                connection.execute(self.sql(UPDATE_JOB), params)
                connection.execute("COMMIT")
                return job
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    def close(self) -> None:
        for _ in range(self._connections):
            self._pool.get(timeout=SQLITE_BUSY_TIMEOUT_SECONDS).close()


class PostgresJobTable(JobTable):
    """The table in a PostgreSQL database, through a psycopg connection pool."""

    def __init__(self, conninfo: str) -> None:
        self._pool = ConnectionPool(
            conninfo, min_size=POSTGRES_MIN_CONNECTIONS, max_size=POSTGRES_MAX_CONNECTIONS,
            open=True,
        )
        self._pool.wait(timeout=10)

    def execute(self, statement: str, params: Sequence[Any] = (), write: bool = False) -> list[Row]:
        with self._pool.connection() as connection, connection.cursor(row_factory=dict_row) as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def change_job(self, job_id: str, change: Change) -> Row | None:
        with self._pool.connection() as connection, connection.cursor(row_factory=dict_row) as cur:
            row = cur.execute(SELECT_JOB + " FOR UPDATE", (job_id,)).fetchone()
            if row is None:
                return None
            job = change(row)
            cur.execute(UPDATE_JOB, [*(job[c] for c in MUTABLE_COLUMNS), job_id])
            return job

    def create_schema(self) -> None:
        """Creates the tables once, even when several workers start together."""
        with self._pool.connection() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            for statement in SCHEMA:
                connection.execute(statement)

    def close(self) -> None:
        self._pool.close()


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}
