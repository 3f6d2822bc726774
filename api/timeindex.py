"""Application recorders that index event timestamps, for "the job as it was at time T".

The ledger passes one ``(originator_id, timestamp, version)`` entry per event as
``event_timestamps``, with no timestamp for the events it does not index (see ``domain.audit``);
each recorder writes a row for every entry with a timestamp, in the same transaction as the
events, so the index is never behind the log, and ``version_at()`` answers with one indexed
lookup. Selected through the library's ``APPLICATION_RECORDER_TOPIC`` setting.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteTransaction
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from api.store import DurableSQLiteConnectionPool

INDEX_TABLE = "event_timestamps"


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
        """
        pool = self.datastore.pool
        assert isinstance(pool, DurableSQLiteConnectionPool), "opened by DurableSQLiteFactory"
        writer = pool.acquire_writer(kwargs.get("deadline"))
        try:
            connection = writer.sqlite_connection
            try:
                connection.execute("BEGIN")
                cursor = connection.cursor()
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


class PostgresTimeIndexedRecorder(PostgresApplicationRecorder):
    """PostgreSQL application recorder with a timestamp index, inserting in one round trip.

    A save is one call of a server-side function that takes the table lock (so notification ids
    commit in order, as the library's own recorder ensures), notifies listeners, inserts the
    events and then their index rows. The library's recorder needs two round trips and a
    client-side pipeline for the same work; a save is most of a command's cost.
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(datastore.schema)
        index = SQL("{0}.{1}").format(schema, Identifier(INDEX_TABLE))
        function = SQL("{0}.{1}").format(schema, Identifier(f"{events_table_name}_insert"))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (originator_id uuid NOT NULL, "
                "timestamp timestamptz NOT NULL, originator_version bigint NOT NULL, "
                "PRIMARY KEY (originator_id, timestamp, originator_version))"
            ).format(index)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {function}(ids uuid[], versions bigint[], "
                "topics text[], states bytea[], stamps timestamptz[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "INSERT INTO {index} (originator_id, timestamp, originator_version) "
                "SELECT * FROM unnest(ids, stamps, versions) AS e(i, t, v) WHERE t IS NOT NULL; "
                "END; $BODY$"
            ).format(
                function=function,
                schema=schema,
                lock_timeout=datastore.lock_timeout,
                table=Identifier(events_table_name),
                channel=Identifier(self.channel_name),
                index=index,
            )
        )
        self._insert = SQL(
            "SELECT * FROM {0}(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[], "
            "%s::timestamptz[]) AS notification_id"
        ).format(function).as_string()
        self._insert_one = SQL(
            "SELECT * FROM {0}(ARRAY[%s::uuid], ARRAY[%s::bigint], ARRAY[%s::text], "
            "ARRAY[%s::bytea], ARRAY[%s::timestamptz]) AS notification_id"
        ).format(function).as_string()
        self._select_version = SQL(
            "SELECT MAX(originator_version) AS version FROM {0} "
            "WHERE originator_id = %s AND timestamp <= %s"
        ).format(index).as_string()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        """One round trip. A lone event (most saves) goes as scalars, which the server makes
        arrays of: psycopg's Python array dumpers cost a fifth of a command's CPU."""
        if not stored_events:
            return []
        stamps = [at for _, at, _ in kwargs.get("event_timestamps", ())]
        parameters: tuple[Any, ...]
        if len(stored_events) == 1:
            (s,) = stored_events
            stamp = stamps[0] if stamps else None
            query = self._insert_one
            parameters = (s.originator_id, s.originator_version, s.topic, s.state, stamp)
        else:
            query = self._insert
            parameters = (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
                stamps,
            )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, parameters, prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest indexed version recorded at or before ``at`` (None when there is none)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_version, (originator_id, at), prepare=True)
            row = curs.fetchone()
            return None if row is None else row["version"]


class POPOTimeIndexedRecorder(POPOApplicationRecorder):
    """In-memory application recorder with a timestamp index."""

    def __init__(self) -> None:
        super().__init__()
        self._timestamps: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        for originator_id, at, version in kwargs.get("event_timestamps", ()):
            if at:
                bisect.insort(self._timestamps[originator_id], (at, version))
        return notification_ids

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest indexed version recorded at or before ``at`` (None when there is none)."""
        with self._database_lock:
            entries = self._timestamps.get(originator_id, [])
            upto = bisect.bisect_right(entries, (at, float("inf")))
            return max((version for _, version in entries[:upto]), default=None)


class TimeIndexedPOPOFactory(POPOFactory):
    """The library's in-memory factory, with the time-indexed recorder."""

    def application_recorder(self) -> ApplicationRecorder:
        return POPOTimeIndexedRecorder()
