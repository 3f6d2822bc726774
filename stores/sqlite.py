"""The SQLite store: durable connections, one writer connection, and the time-indexed recorder.

Every commit is synced to disk (``synchronous=FULL``), so an acknowledged command survives a
crash; WAL mode lets reads run beside the single writer. A write waits for the file's write lock
for at most the busy timeout, or less when the command's deadline comes sooner.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    InterfaceError,
    StoredEvent,
)
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
    SQLiteTransaction,
)
from eventsourcing.utils import Environment

from stores.timeindex import INDEX_TABLE

SQLITE_BUSY_TIMEOUT_SECONDS = 5
SQLITE_STATEMENT_CACHE = 128
#: Connections kept open: one per request thread (anyio's pool has 40), so that concurrent
#: reads reuse connections instead of opening and closing one each (the library keeps 5) ...
SQLITE_POOL_SIZE = 40
#: ... and how many more may open for a burst beyond that, closed when given back.
SQLITE_POOL_OVERFLOW = 10


def create_private(path: Path) -> None:
    """Creates the database file readable by its owner only (it holds password hashes);
    SQLite gives its -wal and -shm files the same permissions."""
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


class DurableSQLiteConnection(SQLiteConnection):
    """The library's SQLite connection, with its sqlite3 connection in reach."""

    @property
    def sqlite_connection(self) -> sqlite3.Connection:
        return self._sqlite_conn


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    """Connections that sync every commit to disk, so an acknowledged command survives a crash,
    and reads that never queue behind writers.

    The library's pool lets one caller at a time ask for a connection, and a writer waits for
    the in-process write lock inside that turn: while another process holds the file's write
    lock, every read queued behind two waiting commands for up to the pool timeout. In WAL mode
    a read needs no lock at all, so the turn is shared by as many callers as there are
    connections; commands still take turns for the write lock.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._get_semaphore = threading.Semaphore(self.pool_size + self.max_overflow)
        self._writer: DurableSQLiteConnection | None = None
        self._writer_busy_ms = 0

    def acquire_writer(self, deadline: float | None = None) -> DurableSQLiteConnection:
        """The pool's own writer connection, under the pool's writer lock (release it with
        :meth:`release_writer`): the way a command's events are written. Waiting for the lock,
        and then for the file's write lock, ends at ``deadline`` (a ``time.monotonic()``
        instant) when one is given, else after the busy timeout.

        Getting a connection from the pool and giving it back (fair queueing, usage bookkeeping,
        two locks and a condition) cost about 10 us a command, all of it for what the writer lock
        alone decides: whose turn it is to write.
        """
        if self._closed:
            raise ConnectionPoolClosedError("Pool is closed")
        if not self._writer_lock.acquire(timeout=min(self.pool_timeout, self._left(deadline))):
            raise ConnectionUnavailableError("Timed out waiting for return of writer")
        try:
            if self._writer is None or self._writer.closed:
                self._writer = self._create_connection()
                self._writer_busy_ms = round(self._busy_seconds() * 1000)
            busy_ms = round(self._left(deadline) * 1000)
            if busy_ms != self._writer_busy_ms:
                self._writer.sqlite_connection.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
                self._writer_busy_ms = busy_ms
        except BaseException:
            self._writer_lock.release()
            raise
        return self._writer

    def _busy_seconds(self) -> float:
        return float(self.lock_timeout or SQLITE_BUSY_TIMEOUT_SECONDS)

    def _left(self, deadline: float | None) -> float:
        """How long a writer may wait from now: the busy timeout, or less when ``deadline``
        comes sooner."""
        if deadline is None:
            return self._busy_seconds()
        return min(self._busy_seconds(), max(0.0, deadline - time.monotonic()))

    def release_writer(self) -> None:
        self._writer_lock.release()

    def close(self) -> None:
        super().close()
        if self._writer is not None:
            self._writer.close()

    def _create_connection(self) -> DurableSQLiteConnection:
        """The library's connection, with a statement cache: it asks for ``True`` statements,
        that is one, so a command compiled its BEGIN and INSERT again each time."""
        try:
            connection = sqlite3.connect(
                self.db_name,
                timeout=self.lock_timeout or SQLITE_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=SQLITE_STATEMENT_CACHE,
                uri=True,
            )
        except (sqlite3.Error, TypeError) as error:
            raise InterfaceError(error) from error
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.row_factory = sqlite3.Row
        self.is_journal_mode_wal = True
        return DurableSQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


class DurableSQLiteFactory(SQLiteFactory):
    """The library's SQLite factory (WAL mode) with durable connections."""

    def __init__(self, env: Environment | dict[str, Any] | None):
        super().__init__(env)
        plain = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=plain.db_name,
            lock_timeout=plain.lock_timeout,
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_OVERFLOW,
        )
        plain.close()


def _sortable(at: datetime) -> str:
    """UTC ISO text with fixed microseconds, so that text order is time order in SQLite."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class SQLiteTimeIndexedRecorder(SQLiteApplicationRecorder):
    """SQLite application recorder with a timestamp index beside the events."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {INDEX_TABLE} ("
            "originator_id TEXT, timestamp TEXT, originator_version INTEGER, "
            "PRIMARY KEY (originator_id, timestamp, originator_version)) WITHOUT ROWID",
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's, on the pool's own writer connection (``acquire_writer``) and without
        its transaction and cursor wrappers: about 16 us a command in a tight loop, and 5-8% of
        the write-path benchmark's throughput once cache effects count.

        Errors are the library's: its transaction rolls back and translates them. Waiting for
        the write lock ends at ``deadline`` (a ``time.monotonic()`` instant) when one is given.

        The cursor is closed here, before the writer is handed on. A failed insert's traceback
        keeps it alive in a reference cycle; when the garbage collector, on whatever thread it
        runs (the event loop's), finalised it later, it reset a statement on the writer while
        the next command waited in SQLite for the file lock, holding the connection's mutex:
        the collector blocked holding the GIL, and the whole process stalled a busy timeout.
        """
        pool = self.datastore.pool
        assert isinstance(pool, DurableSQLiteConnectionPool), "opened by DurableSQLiteFactory"
        writer = pool.acquire_writer(kwargs.get("deadline"))
        try:
            connection = writer.sqlite_connection
            cursor = connection.cursor()
            try:
                cursor.execute("BEGIN")
                notification_ids: list[int] = []
                for s in stored_events:
                    key = s.originator_id
                    cursor.execute(
                        self.insert_events_statement,
                        (key.hex if isinstance(key, UUID) else key, s.originator_version,
                         s.topic, s.state),
                    )  # fmt: skip
                    notification_ids.append(cursor.lastrowid)  # type: ignore[arg-type]
                rows = [
                    (i.hex, _sortable(t), v) for i, t, v in kwargs.get("event_timestamps", ()) if t
                ]
                if rows:
                    cursor.executemany(f"INSERT INTO {INDEX_TABLE} VALUES (?, ?, ?)", rows)
                connection.commit()
            except BaseException as error:
                SQLiteTransaction(writer, commit=False).__exit__(
                    type(error), error, error.__traceback__
                )
                raise
            finally:
                cursor.close()
            return notification_ids
        finally:
            pool.release_writer()

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest indexed version recorded at or before ``at`` (None when there is none)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT MAX(originator_version) FROM {INDEX_TABLE} "
                "WHERE originator_id = ? AND timestamp <= ?",
                (originator_id.hex, _sortable(at)),
            )
            version: int | None = c.fetchone()[0]
            return version
