"""The SQLite view: ``job_summary`` in its own file, beside the events file.

``var/jobledger.db`` keeps its view in ``var/jobledger.view.db``. A separate file has its own write
lock, so the projection never contends with the ledger's event writers (SQLite has one writer per
file), and a rebuild's long transactions and its swap only ever block the runner, never a
command. The view is derived data: WAL with ``synchronous=NORMAL`` keeps it consistent through a
crash (each transaction holds its rows and its position together); a lost tail is replayed.

Tables: ``job_summary`` (rows in insertion order, so the jobs in flight share pages; ids as
16-byte blobs, times as integer microseconds since the epoch, UTC), ``job_summary_counts``,
``projection_tracking`` (position per view), ``projection_meta`` (the cursor key). A rebuild fills
``job_summary_shadow`` without secondary indexes, builds them (the live runner waits meanwhile:
one writer per file), then renames it over ``job_summary`` in one transaction. One runner per
view file holds ``<view>.runner.lock`` (``fcntl.flock``: released by the kernel when its process
dies). A ``job_summary`` an earlier version created (other columns) is dropped when the view
opens and recreated empty at position 0: the runner replays the whole log into it.
"""

from __future__ import annotations

import queue
import secrets
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.job import JobStatus
from projections.locks import ExclusiveLock, FileLock
from projections.log import ReadLog
from projections.projection import JobSummaryProjection
from projections.query import EPOCH, CursorCodec, JobPage, JobQuery, next_cursor
from projections.sql import (
    COLUMNS,
    PROGRESS_COLUMNS,
    SELECT_COLUMNS,
    STATUS_COLUMNS,
    claimable_statement,
    expired_leases_statement,
    index_statements,
    list_statement,
    next_lease_expiry_statement,
    next_run_at_statement,
)
from projections.summary import STATUS, TYPE, JobSummary, SummaryChanges, SummaryCounts
from projections.view import (
    LIVE_NAME,
    SHADOW_NAME,
    JobSummaryView,
    catch_up_in,
)

BUSY_TIMEOUT_SECONDS = 30.0
SWAP_BATCH = 500
_US = timedelta(microseconds=1)
#: How a claim compares ``run_at`` (see ``projections.sql.claimable_statement``).
RUN_AT_FILTER = "+run_at"


def view_path_for(events_path: Path) -> Path:
    """Where the view of an events file lives: ``x.db`` -> ``x.view.db``."""
    return events_path.with_name(f"{events_path.stem}.view{events_path.suffix}")


class _Database:
    """The view file's connections: one writer (serialised) and a pool of readers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.write_lock = threading.RLock()
        self.writer = self.connect()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA cache_size=-16000")
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self.write_lock:
            self.writer.execute("BEGIN IMMEDIATE")
            try:
                yield self.writer
            except BaseException:
                self.writer.execute("ROLLBACK")
                raise
            self.writer.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._readers.get_nowait()
        except queue.Empty:
            connection = self.connect()
        try:
            yield connection
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            self._readers.put(connection)

    def close(self) -> None:
        with self.write_lock:
            self.writer.close()
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break


class SQLiteSummaryView(JobSummaryView[sqlite3.Connection]):
    """The job_summary view in an SQLite file."""

    poll_interval = 0.002
    #: WAL readers never wait for the writer, and a page of rows is a few hundred microseconds.
    reads_in_process = True

    def __init__(
        self,
        path: Path,
        name: str = LIVE_NAME,
        *,
        cursor_key: bytes | None = None,
        _database: _Database | None = None,
    ) -> None:
        super().__init__(name)
        self.path = path
        self._db = _database or _Database(path)
        self._owns_db = _database is None
        self._counts_table = f"{name}_counts"
        self._codec: CursorCodec | None = CursorCodec(cursor_key) if cursor_key else None
        t, c = name, self._counts_table
        self._insert = (
            f"INSERT INTO {t} ({SELECT_COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS))})"
        )
        self._update_status = _update(t, STATUS_COLUMNS)
        self._update_progress = _update(t, PROGRESS_COLUMNS)
        self._add_counts = (
            f"INSERT INTO {c} (dimension, key, n) VALUES (?, ?, ?) "
            "ON CONFLICT (dimension, key) DO UPDATE SET n = n + excluded.n"
        )
        if name == LIVE_NAME:
            self._create_schema()

    def _create_schema(self) -> None:
        with self._db.write() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS projection_tracking "
                "(name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS projection_meta "
                "(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
            )
            db.execute(
                "INSERT OR IGNORE INTO projection_meta VALUES ('cursor_key', ?)",
                (secrets.token_bytes(32),),
            )
            columns = _columns(db, self.name)
            outdated = bool(columns) and columns != COLUMNS
            if outdated:
                _drop_outdated(db)
            if columns != COLUMNS:
                self._create_tables(db, with_indexes=True)
            for statement in index_statements(self.name, secrets.token_hex(4), _indexes(db)):
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO projection_tracking VALUES (?, 0)", (self.name,))
            if outdated:
                db.execute(
                    "UPDATE projection_tracking SET position = 0 WHERE name = ?", (self.name,)
                )

    def _create_tables(self, db: sqlite3.Connection, *, with_indexes: bool) -> None:
        db.execute(
            f"CREATE TABLE {self.name} ("
            "id BLOB PRIMARY KEY, job_type TEXT NOT NULL, status TEXT NOT NULL, "
            "created_by TEXT NOT NULL, total_items INTEGER, processed_items INTEGER NOT NULL, "
            "progress INTEGER NOT NULL, error_count INTEGER NOT NULL, last_error TEXT, "
            "created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER, "
            "updated_at INTEGER NOT NULL, version INTEGER NOT NULL, priority INTEGER NOT NULL, "
            "run_at INTEGER NOT NULL, attempt INTEGER NOT NULL, max_attempts INTEGER NOT NULL, "
            "lease_expires_at INTEGER, cancel_requested INTEGER NOT NULL)"
        )
        db.execute(
            f"CREATE TABLE {self._counts_table} (dimension TEXT NOT NULL, key TEXT NOT NULL, "
            "n INTEGER NOT NULL, PRIMARY KEY (dimension, key)) WITHOUT ROWID"
        )
        if with_indexes:
            for statement in index_statements(self.name, secrets.token_hex(4)):
                db.execute(statement)

    # Writing.

    def _write(self) -> Any:
        return self._db.write()

    def _lock_position(self, tx: sqlite3.Connection) -> int:
        row = tx.execute("SELECT position FROM projection_tracking WHERE name = ?", (self.name,))
        return int(row.fetchone()[0])

    def _load(self, tx: sqlite3.Connection, keys: set[int]) -> dict[int, JobSummary]:
        ids = [k.to_bytes(16) for k in keys]
        rows: dict[int, JobSummary] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for record in tx.execute(
                f"SELECT {SELECT_COLUMNS} FROM {self.name} WHERE id IN ({marks})", chunk
            ):
                rows[int.from_bytes(record[0])] = _from_record(record)
        return rows

    def _store(self, tx: sqlite3.Connection, changes: SummaryChanges) -> None:
        created, status_changed = changes.created, changes.status_changed
        inserts, by_status, by_progress = [], [], []
        for key, r in changes.rows.items():
            if key in created:
                inserts.append(_to_record(r))
            elif key in status_changed:
                by_status.append((
                    r.status.value, _us(r.started_at), _us(r.completed_at),
                    (r.run_at - EPOCH) // _US, r.attempt, r.max_attempts, r.total_items,
                    r.processed_items, r.progress, r.error_count, r.last_error,
                    (r.updated_at - EPOCH) // _US, r.version, _us(r.lease_expires_at),
                    r.cancel_requested, key.to_bytes(16),
                ))  # fmt: skip
            else:
                by_progress.append((
                    r.total_items, r.processed_items, r.progress, r.error_count, r.last_error,
                    (r.updated_at - EPOCH) // _US, r.version, _us(r.lease_expires_at),
                    r.cancel_requested, key.to_bytes(16),
                ))  # fmt: skip
        if inserts:
            tx.executemany(self._insert, inserts)
        if by_status:
            tx.executemany(self._update_status, by_status)
        if by_progress:
            tx.executemany(self._update_progress, by_progress)
        deltas = [(d, k, n) for (d, k), n in changes.count_deltas.items() if n]
        if deltas:
            tx.executemany(self._add_counts, deltas)

    def _set_position(self, tx: sqlite3.Connection, position: int) -> None:
        tx.execute(
            "UPDATE projection_tracking SET position = ? WHERE name = ?", (position, self.name)
        )

    # Reading.

    def position(self) -> int:
        with self._db.read() as db:
            row = db.execute(
                "SELECT position FROM projection_tracking WHERE name = ?", (self.name,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def get(self, job_id: UUID) -> JobSummary | None:
        with self._db.read() as db:
            record = db.execute(
                f"SELECT {SELECT_COLUMNS} FROM {self.name} WHERE id = ?", (job_id.bytes,)
            ).fetchone()
        return None if record is None else _from_record(record)

    def query(self, query: JobQuery) -> JobPage:
        after = self.cursor_codec.decode(query)
        statement, params = list_statement(self.name, query, after, "?", _us, _bytes)
        with self._db.read() as db:
            records = db.execute(statement, params).fetchall()
        return next_cursor(self.cursor_codec, query, [_from_record(r) for r in records])

    def counts(self) -> SummaryCounts:
        with self._db.read() as db:
            triples = db.execute(f"SELECT dimension, key, n FROM {self._counts_table}").fetchall()
        return SummaryCounts.from_triples(triples)

    def claimable(
        self,
        now: datetime,
        types: Collection[str] | None,
        limit: int,
        skip: Collection[UUID] = (),
    ) -> list[UUID]:
        if types is not None and not types:
            return []
        skipped = [job_id.bytes for job_id in skip]
        statement, params = claimable_statement(
            self.name, _us(now), types, limit, skipped, "?", run_at=RUN_AT_FILTER
        )
        with self._db.read() as db:
            return [UUID(bytes=r[0]) for r in db.execute(statement, params)]

    def next_run_at(self, types: Collection[str] | None) -> datetime | None:
        if types is not None and not types:
            return None
        statement, params = next_run_at_statement(self.name, types, "?")
        with self._db.read() as db:
            row = db.execute(statement, params).fetchone()
        return None if row is None else _time(row[0])

    def expired_leases(self, now: datetime, limit: int) -> list[tuple[UUID, int, datetime]]:
        statement = expired_leases_statement(self.name, "?")
        with self._db.read() as db:
            records = db.execute(statement, (_us(now), limit)).fetchall()
        return [(UUID(bytes=r[0]), r[1], EPOCH + timedelta(microseconds=r[2])) for r in records]

    def next_lease_expiry(self) -> datetime | None:
        with self._db.read() as db:
            row = db.execute(next_lease_expiry_statement(self.name)).fetchone()
        return None if row is None else _time(row[0])

    def rows(self) -> Iterator[JobSummary]:
        connection = self._db.connect()
        try:
            cursor = connection.execute(f"SELECT {SELECT_COLUMNS} FROM {self.name} ORDER BY id")
            while records := cursor.fetchmany(1000):
                yield from (_from_record(r) for r in records)
        finally:
            connection.close()

    def recount(self) -> tuple[SummaryCounts, SummaryCounts]:
        with self._db.read() as db:
            db.execute("BEGIN")
            kept = db.execute(f"SELECT dimension, key, n FROM {self._counts_table}").fetchall()
            actual = db.execute(
                f"SELECT ?, status, count(*) FROM {self.name} GROUP BY status "
                f"UNION ALL SELECT ?, job_type, count(*) FROM {self.name} GROUP BY job_type",
                (STATUS, TYPE),
            ).fetchall()
            db.execute("COMMIT")
        return SummaryCounts.from_triples(kept), SummaryCounts.from_triples(actual)

    @property
    def cursor_codec(self) -> CursorCodec:
        if self._codec is None:
            with self._db.read() as db:
                key = db.execute(
                    "SELECT value FROM projection_meta WHERE name = 'cursor_key'"
                ).fetchone()[0]
            self._codec = CursorCodec(bytes(key))
        return self._codec

    # Runners and rebuilds.

    def runner_lock(self) -> ExclusiveLock:
        return FileLock(self._lock_path("runner"))

    def rebuild_lock(self) -> ExclusiveLock:
        return FileLock(self._lock_path("rebuild"))

    def runner_holder(self) -> str | None:
        return FileLock.holder(self._lock_path("runner"))

    def _lock_path(self, purpose: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{purpose}.lock")

    def create_shadow(self) -> SQLiteSummaryView:
        shadow = SQLiteSummaryView(
            self.path, SHADOW_NAME, cursor_key=self.cursor_codec.key, _database=self._db
        )
        with self._db.write() as db:
            _drop_leftovers(db)
            shadow._create_tables(db, with_indexes=False)
            db.execute("INSERT OR REPLACE INTO projection_tracking VALUES (?, 0)", (SHADOW_NAME,))
        return shadow

    def finish_shadow(self) -> None:
        with self._db.write() as db:
            for statement in index_statements(SHADOW_NAME, secrets.token_hex(4)):
                db.execute(statement)

    def swap_in(
        self,
        shadow: JobSummaryView[sqlite3.Connection],
        read_log: ReadLog,
        projection: JobSummaryProjection,
        up_to: int,
    ) -> int:
        assert isinstance(shadow, SQLiteSummaryView) and shadow._db is self._db
        retired = f"job_summary_retired_{secrets.token_hex(4)}"
        try:
            with self._db.write() as db:
                up_to = max(up_to, self._lock_position(db))
                position = catch_up_in(shadow, db, read_log, projection, SWAP_BATCH, up_to)
                for old, new in (
                    (LIVE_NAME, retired),
                    (f"{LIVE_NAME}_counts", f"{retired}_counts"),
                    (SHADOW_NAME, LIVE_NAME),
                    (f"{SHADOW_NAME}_counts", f"{LIVE_NAME}_counts"),
                ):
                    db.execute(f"ALTER TABLE {old} RENAME TO {new}")
                db.execute(
                    "UPDATE projection_tracking SET position = ? WHERE name = ?",
                    (position, LIVE_NAME),
                )
                db.execute("DELETE FROM projection_tracking WHERE name = ?", (SHADOW_NAME,))
        except BaseException:
            shadow._cache = {}
            raise
        self.observe(position)
        with self._db.write() as db:
            _drop_leftovers(db)
        return position

    def close(self) -> None:
        if self._owns_db:
            self._db.close()


def _update(table: str, columns: Sequence[str]) -> str:
    return f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"


def _columns(db: sqlite3.Connection, name: str) -> tuple[str, ...]:
    """The columns of a table, in order (none when it does not exist)."""
    return tuple(row[1] for row in db.execute(f"PRAGMA table_info({name})"))


def _drop_outdated(db: sqlite3.Connection) -> None:
    """Drops a live view an earlier version created (other columns): it is derived data, so
    the caller recreates it empty at position 0 and the runner replays the log into it."""
    db.execute(f"DROP TABLE IF EXISTS {LIVE_NAME}")
    db.execute(f"DROP TABLE IF EXISTS {LIVE_NAME}_counts")


def _indexes(db: sqlite3.Connection) -> set[tuple[str, ...]]:
    """The columns of each index on the live table (a newer version may add indexes)."""
    return {
        tuple(column[2] for column in db.execute(f"PRAGMA index_info({index[1]})"))
        for index in db.execute(f"PRAGMA index_list({LIVE_NAME})")
    }


def _drop_leftovers(db: sqlite3.Connection) -> None:
    names = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND (name LIKE 'job\\_summary\\_retired\\_%' ESCAPE '\\' OR name IN (?, ?))",
            (SHADOW_NAME, f"{SHADOW_NAME}_counts"),
        )
    ]
    for name in names:
        db.execute(f"DROP TABLE IF EXISTS {name}")


def _us(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // _US


def _bytes(job_id: UUID) -> bytes:
    return job_id.bytes


def _time(micros: int | None) -> datetime | None:
    return None if micros is None else EPOCH + timedelta(microseconds=micros)


def _to_record(r: JobSummary) -> tuple[Any, ...]:
    return (
        r.id.bytes, r.job_type, r.status.value, r.created_by, r.total_items, r.processed_items,
        r.progress, r.error_count, r.last_error, (r.created_at - EPOCH) // _US,
        _us(r.started_at), _us(r.completed_at), (r.updated_at - EPOCH) // _US, r.version,
        r.priority, (r.run_at - EPOCH) // _US, r.attempt, r.max_attempts, _us(r.lease_expires_at),
        r.cancel_requested,
    )  # fmt: skip


def _from_record(r: Sequence[Any]) -> JobSummary:
    return JobSummary(
        UUID(bytes=r[0]), r[1], JobStatus(r[2]), r[3], r[4], r[5], r[6], r[7], r[8],
        EPOCH + timedelta(microseconds=r[9]), _time(r[10]), _time(r[11]),
        EPOCH + timedelta(microseconds=r[12]), r[13], r[14], EPOCH + timedelta(microseconds=r[15]),
        r[16], r[17], _time(r[18]), bool(r[19]),
    )  # fmt: skip
