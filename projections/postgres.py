"""The PostgreSQL view: ``job_summary`` in the events' database, beside the events table.

Tables: ``job_summary`` (rows), ``job_summary_counts``, ``projection_tracking`` (position per
view) and ``projection_meta`` (the cursor key), all in the ``public`` schema. A batch is one
pipelined transaction of two round trips: lock the position ``FOR UPDATE`` (so two writers can
never both apply an event) and load the rows it touches; then one ``unnest`` statement per kind
of row change, the count deltas, the new position and a ``job_summary_position`` notification,
which wakes read-your-writes waiters in every process at commit. Commits are asynchronous
(``synchronous_commit = off``): the view is derived, and a crash loses at most its last batches,
rows and position together, which the runner replays.

One runner per database holds a session-level advisory lock (on its own connection; released by
the server when that connection ends). A rebuild fills ``job_summary_shadow`` (asynchronous
commits, secondary indexes built at the end), then renames it over ``job_summary`` in one
transaction that first locks the live table. A ``job_summary`` an earlier version created (other
columns) is dropped when the view opens and recreated empty at position 0: the runner replays the
whole log into it.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import psycopg
import psycopg_pool

from domain.job import JobStatus
from projections.locks import AdvisoryLock, ExclusiveLock
from projections.log import ReadLog
from projections.projection import JobSummaryProjection
from projections.query import CursorCodec, JobPage, JobQuery, next_cursor
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
from stores.postgres import RECONNECT_SECONDS, FailFast

logger = logging.getLogger(__name__)

CHANNEL = "job_summary_position"
RUNNER_LOCK_KEY = 0x6A6F626C_65646701  # "jobledg" + 1
REBUILD_LOCK_KEY = 0x6A6F626C_65646702
SCHEMA_LOCK_KEY = 0x6A6F626C_65646703
SWAP_BATCH = 500
#: How long a caller waits for a pooled connection while the database is up: longer than any
#: queueing for one of the pool's connections in normal operation.
POOL_WAIT_SECONDS = 5.0
TYPES = {
    "id": "uuid",
    "job_type": "text",
    "status": "text",
    "created_by": "text",
    "total_items": "bigint",
    "processed_items": "bigint",
    "progress": "smallint",
    "error_count": "bigint",
    "last_error": "text",
    "created_at": "timestamptz",
    "started_at": "timestamptz",
    "completed_at": "timestamptz",
    "updated_at": "timestamptz",
    "version": "bigint",
    "priority": "smallint",
    "run_at": "timestamptz",
    "attempt": "integer",
    "max_attempts": "integer",
    "lease_expires_at": "timestamptz",
    "cancel_requested": "boolean",
}
NOT_NULL = {"job_type", "status", "created_by", "processed_items", "progress", "error_count",
            "created_at", "updated_at", "version", "priority", "run_at", "attempt",
            "max_attempts", "cancel_requested"}  # fmt: skip

Connection = psycopg.Connection[Any]


class PostgresSummaryView(JobSummaryView[Connection]):
    """The job_summary view in a PostgreSQL database."""

    poll_interval = 0.05

    def __init__(
        self,
        conninfo: dict[str, Any],
        name: str = LIVE_NAME,
        *,
        pool_size: int = 4,
        cursor_key: bytes | None = None,
        _pool: psycopg_pool.ConnectionPool[Connection] | None = None,
    ) -> None:
        super().__init__(name)
        self.conninfo = {**conninfo, "options": "-c timezone=UTC"}
        self._pool = _pool or FailFastPool(
            kwargs={**self.conninfo, "autocommit": True},
            min_size=1,
            max_size=pool_size,
            open=True,
            configure=_configure,
            name=f"jobledger-{name}",
            timeout=POOL_WAIT_SECONDS,
            reconnect_timeout=RECONNECT_SECONDS,
        )
        self._owns_pool = _pool is None
        self._codec: CursorCodec | None = CursorCodec(cursor_key) if cursor_key else None
        self._counts_table = f"{name}_counts"
        self._closed = threading.Event()
        self._listening = threading.Event()
        self._listener: threading.Thread | None = None
        self._listener_lock = threading.Lock()
        t, c = name, self._counts_table
        arrays = ", ".join(f"%s::{TYPES[col]}[]" for col in COLUMNS)
        self._insert = f"INSERT INTO {t} ({SELECT_COLUMNS}) SELECT * FROM unnest({arrays})"
        self._lock_statement = "SELECT position FROM projection_tracking WHERE name = %s FOR UPDATE"
        self._load_statement = f"SELECT {SELECT_COLUMNS} FROM {t} WHERE id = ANY(%s::uuid[])"
        self._update_status = _bulk_update(t, STATUS_COLUMNS)
        self._update_progress = _bulk_update(t, PROGRESS_COLUMNS)
        self._add_counts = (
            f"INSERT INTO {c} AS c (dimension, key, n) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[]) "
            "ON CONFLICT (dimension, key) DO UPDATE SET n = c.n + excluded.n"
        )
        if name == LIVE_NAME:
            self._create_schema()

    def _create_schema(self) -> None:
        with self._connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS projection_tracking "
                "(name text PRIMARY KEY, position bigint NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS projection_meta "
                "(name text PRIMARY KEY, value bytea NOT NULL)"
            )
            db.execute(
                "INSERT INTO projection_meta VALUES ('cursor_key', %s) ON CONFLICT DO NOTHING",
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
            db.execute(
                "INSERT INTO projection_tracking VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (self.name,),
            )
            if outdated:
                db.execute(
                    "UPDATE projection_tracking SET position = 0 WHERE name = %s", (self.name,)
                )

    def _create_tables(self, db: Connection, *, with_indexes: bool) -> None:
        token = secrets.token_hex(4)
        columns = ", ".join(
            f"{col} {TYPES[col]}{' NOT NULL' if col in NOT_NULL else ''}" for col in COLUMNS
        )
        db.execute(
            f"CREATE TABLE {self.name} ({columns}, CONSTRAINT js_{token}_pkey PRIMARY KEY (id)) "
            "WITH (fillfactor = 85)"
        )
        db.execute(
            f"CREATE TABLE {self._counts_table} (dimension text NOT NULL, key text NOT NULL, "
            f"n bigint NOT NULL, CONSTRAINT jsc_{token}_pkey PRIMARY KEY (dimension, key))"
        )
        if with_indexes:
            for statement in index_statements(self.name, token):
                db.execute(statement)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection. When one turns out broken (the server restarted, or ended its
        sessions), the others idle in the pool most likely are too: they are replaced at once,
        instead of each failing its next user (the runner would restart once per connection)."""
        with self._pool.connection() as db:
            try:
                yield db
            except psycopg.OperationalError:
                if db.broken:
                    self._pool.drain()
                raise

    # Writing.

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A pipelined transaction: two round trips per batch, one to read, one to write."""
        with self._connection() as db, db.pipeline(), db.transaction():
            yield db

    def _begin_batch(self, tx: Connection, keys: set[int]) -> tuple[int, dict[int, JobSummary]]:
        locked = tx.execute(self._lock_statement, (self.name,))
        loaded = tx.execute(self._load_statement, (_texts(keys),)) if keys else None
        row = locked.fetchone()
        records = [] if loaded is None else loaded.fetchall()
        assert row is not None, f"no tracking row for {self.name}"
        return int(row[0]), {r[0].int: _from_record(r) for r in records}

    def _lock_position(self, tx: Connection) -> int:
        row = tx.execute(self._lock_statement, (self.name,)).fetchone()
        assert row is not None, f"no tracking row for {self.name}"
        return int(row[0])

    def _load(self, tx: Connection, keys: set[int]) -> dict[int, JobSummary]:
        records = tx.execute(self._load_statement, (_texts(keys),)).fetchall()
        return {r[0].int: _from_record(r) for r in records}

    def _store(self, tx: Connection, changes: SummaryChanges) -> None:
        created, status_changed = changes.created, changes.status_changed
        inserts, by_status, by_progress = [], [], []
        for key, r in changes.rows.items():
            job_id = r.id
            if key in created:
                inserts.append((
                    job_id, r.job_type, r.status.value, r.created_by, r.total_items,
                    r.processed_items, r.progress, r.error_count, r.last_error, r.created_at,
                    r.started_at, r.completed_at, r.updated_at, r.version, r.priority, r.run_at,
                    r.attempt, r.max_attempts, r.lease_expires_at, r.cancel_requested,
                ))  # fmt: skip
            elif key in status_changed:
                by_status.append((
                    r.status.value, r.started_at, r.completed_at, r.run_at, r.attempt,
                    r.max_attempts, r.total_items, r.processed_items, r.progress, r.error_count,
                    r.last_error, r.updated_at, r.version, r.lease_expires_at, r.cancel_requested,
                    job_id,
                ))  # fmt: skip
            else:
                by_progress.append((
                    r.total_items, r.processed_items, r.progress, r.error_count, r.last_error,
                    r.updated_at, r.version, r.lease_expires_at, r.cancel_requested, job_id,
                ))  # fmt: skip
        deltas = [(d, k, n) for (d, k), n in changes.count_deltas.items() if n]
        for statement, records in (
            (self._insert, inserts),
            (self._update_status, by_status),
            (self._update_progress, by_progress),
            (self._add_counts, deltas),
        ):
            if records:
                tx.execute(statement, [list(column) for column in zip(*records, strict=True)])

    def _set_position(self, tx: Connection, position: int) -> None:
        tx.execute(
            "UPDATE projection_tracking SET position = %s WHERE name = %s", (position, self.name)
        )
        if self.name == LIVE_NAME:
            tx.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(position)))

    # Reading.

    def position(self) -> int:
        with self._connection() as db:
            row = db.execute(
                "SELECT position FROM projection_tracking WHERE name = %s", (self.name,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def get(self, job_id: UUID) -> JobSummary | None:
        with self._connection() as db:
            record = db.execute(
                f"SELECT {SELECT_COLUMNS} FROM {self.name} WHERE id = %s", (job_id,)
            ).fetchone()
        return None if record is None else _from_record(record)

    def query(self, query: JobQuery) -> JobPage:
        after = self.cursor_codec.decode(query)
        statement, params = list_statement(self.name, query, after, "%s", _same, _same)
        with self._connection() as db:
            records = db.execute(statement, params).fetchall()
        return next_cursor(self.cursor_codec, query, [_from_record(r) for r in records])

    def counts(self) -> SummaryCounts:
        with self._connection() as db:
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
        statement, params = claimable_statement(self.name, now, types, limit, list(skip), "%s")
        with self._connection() as db:
            return [r[0] for r in db.execute(statement, params)]

    def next_run_at(self, types: Collection[str] | None) -> datetime | None:
        if types is not None and not types:
            return None
        statement, params = next_run_at_statement(self.name, types, "%s")
        with self._connection() as db:
            row = db.execute(statement, params).fetchone()
        return None if row is None else cast(datetime | None, row[0])

    def expired_leases(self, now: datetime, limit: int) -> list[tuple[UUID, int, datetime]]:
        with self._connection() as db:
            records = db.execute(expired_leases_statement(self.name, "%s"), (now, limit))
            return [(r[0], r[1], r[2]) for r in records]

    def next_lease_expiry(self) -> datetime | None:
        with self._connection() as db:
            row = db.execute(next_lease_expiry_statement(self.name)).fetchone()
        return None if row is None else cast(datetime, row[0])

    def rows(self) -> Iterator[JobSummary]:
        with psycopg.connect(**self.conninfo) as db, db.cursor(name="job_summary_rows") as cursor:
            cursor.itersize = 2000
            cursor.execute(f"SELECT {SELECT_COLUMNS} FROM {self.name} ORDER BY id")
            yield from (_from_record(r) for r in cursor)

    def recount(self) -> tuple[SummaryCounts, SummaryCounts]:
        with self._connection() as db, db.transaction():
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            kept = db.execute(f"SELECT dimension, key, n FROM {self._counts_table}").fetchall()
            actual = db.execute(
                f"SELECT %s, status, count(*) FROM {self.name} GROUP BY status "
                f"UNION ALL SELECT %s, job_type, count(*) FROM {self.name} GROUP BY job_type",
                (STATUS, TYPE),
            ).fetchall()
        return SummaryCounts.from_triples(kept), SummaryCounts.from_triples(actual)

    @property
    def cursor_codec(self) -> CursorCodec:
        if self._codec is None:
            with self._connection() as db:
                row = db.execute(
                    "SELECT value FROM projection_meta WHERE name = 'cursor_key'"
                ).fetchone()
            assert row is not None
            self._codec = CursorCodec(bytes(row[0]))
        return self._codec

    # Read-your-writes across processes.

    def _watch(self) -> None:
        with self._listener_lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="job_summary-listener", daemon=True
                )
                self._listener.start()
        self._listening.wait(timeout=1.0)

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                with psycopg.connect(**self.conninfo, autocommit=True) as db:
                    db.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self.observe(self.position())
                    while not self._closed.is_set():
                        for notify in db.notifies(timeout=0.1):
                            self.observe(int(notify.payload))
            except Exception:
                if self._closed.is_set():
                    return
                logger.exception("job_summary position listener failed; reconnecting in 1 s")
                self._closed.wait(1.0)

    # Runners and rebuilds.

    def runner_lock(self) -> ExclusiveLock:
        return AdvisoryLock(self.conninfo, RUNNER_LOCK_KEY, "projection runner")

    def rebuild_lock(self) -> ExclusiveLock:
        return AdvisoryLock(self.conninfo, REBUILD_LOCK_KEY, "projection rebuild")

    def runner_holder(self) -> str | None:
        with self._connection() as db:
            row = db.execute(
                "SELECT a.application_name, a.pid, a.client_addr, a.backend_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.classid::bigint = %s AND l.objid::bigint = %s "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (RUNNER_LOCK_KEY >> 32, RUNNER_LOCK_KEY & 0xFFFFFFFF),
            ).fetchone()
        if row is None:
            return None
        name, pid, address, since = row
        client = address or "local socket"
        return f"{name} (server pid {pid}, client {client}, connected {since:%Y-%m-%d %H:%M:%S%z})"

    def create_shadow(self) -> PostgresSummaryView:
        shadow = PostgresSummaryView(
            self.conninfo, SHADOW_NAME, cursor_key=self.cursor_codec.key, _pool=self._pool
        )
        with self._connection() as db, db.transaction():
            _drop_leftovers(db)
            shadow._create_tables(db, with_indexes=False)
            db.execute(
                "INSERT INTO projection_tracking VALUES (%s, 0) "
                "ON CONFLICT (name) DO UPDATE SET position = 0",
                (SHADOW_NAME,),
            )
        return shadow

    def finish_shadow(self) -> None:
        with self._connection() as db:
            for statement in index_statements(SHADOW_NAME, secrets.token_hex(4)):
                db.execute(statement)
            db.execute(f"ANALYZE {SHADOW_NAME}")

    def swap_in(
        self,
        shadow: JobSummaryView[Connection],
        read_log: ReadLog,
        projection: JobSummaryProjection,
        up_to: int,
    ) -> int:
        assert isinstance(shadow, PostgresSummaryView)
        retired = f"job_summary_retired_{secrets.token_hex(4)}"
        try:
            with self._connection() as db, db.transaction():
                up_to = max(up_to, self._lock_position(db))
                db.execute(f"LOCK TABLE {LIVE_NAME}, {LIVE_NAME}_counts IN ACCESS EXCLUSIVE MODE")
                position = catch_up_in(shadow, db, read_log, projection, SWAP_BATCH, up_to)
                for old, new in (
                    (LIVE_NAME, retired),
                    (f"{LIVE_NAME}_counts", f"{retired}_counts"),
                    (SHADOW_NAME, LIVE_NAME),
                    (f"{SHADOW_NAME}_counts", f"{LIVE_NAME}_counts"),
                ):
                    db.execute(f"ALTER TABLE {old} RENAME TO {new}")
                self._set_position(db, position)
                db.execute("DELETE FROM projection_tracking WHERE name = %s", (SHADOW_NAME,))
        except BaseException:
            shadow._cache = {}
            raise
        self.observe(position)
        with self._connection() as db, db.transaction():
            _drop_leftovers(db)
        return position

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.join(timeout=2.0)
        if self._owns_pool:
            self._pool.close()


class FailFastPool(FailFast, psycopg_pool.ConnectionPool[Connection]):
    """The view's pool: fails fast while the database is unreachable
    (``stores.postgres.FailFast``)."""


def _configure(connection: Connection) -> None:
    """The view is derived data: a commit need not wait for its WAL flush (a crash loses at
    most the last few batches, rows and position together, and the runner replays them)."""
    connection.execute("SET synchronous_commit = off")


def _bulk_update(table: str, columns: Sequence[str]) -> str:
    arrays = ", ".join(f"%s::{TYPES[col]}[]" for col in (*columns, "id"))
    assignments = ", ".join(f"{col} = u.{col}" for col in columns)
    return (
        f"UPDATE {table} AS t SET {assignments} "
        f"FROM unnest({arrays}) AS u({', '.join((*columns, 'id'))}) WHERE t.id = u.id"
    )


def _indexes(db: Connection) -> set[tuple[str, ...]]:
    """The columns of each index on the live table (a newer version may add indexes)."""
    rows = db.execute(
        "SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s::regclass GROUP BY i.indexrelid",
        (LIVE_NAME,),
    ).fetchall()
    return {tuple(row[0]) for row in rows}


def _columns(db: Connection, name: str) -> tuple[str, ...]:
    """The columns of a table, in order (none when it does not exist)."""
    rows = db.execute(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (name,),
    ).fetchall()
    return tuple(row[0] for row in rows)


def _drop_outdated(db: Connection) -> None:
    """Drops a live view an earlier version created (other columns): it is derived data, so
    the caller recreates it empty at position 0 and the runner replays the log into it."""
    db.execute(f"DROP TABLE IF EXISTS {LIVE_NAME}, {LIVE_NAME}_counts")


def _drop_leftovers(db: Connection) -> None:
    names = [
        row[0]
        for row in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND (tablename LIKE 'job\\_summary\\_retired\\_%%' OR tablename = ANY(%s))",
            ([SHADOW_NAME, f"{SHADOW_NAME}_counts"],),
        )
    ]
    for name in names:
        db.execute(f"DROP TABLE IF EXISTS {name}")


def _texts(keys: set[int]) -> list[str]:
    """Job ids as hex text (PostgreSQL parses them faster than Python builds UUIDs)."""
    return [f"{k:032x}" for k in keys]


def _same(value: Any) -> Any:
    return value


def _from_record(r: Sequence[Any]) -> JobSummary:
    return JobSummary(
        r[0], r[1], JobStatus(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
        r[12], r[13], r[14], r[15], r[16], r[17], r[18], r[19],
    )  # fmt: skip
