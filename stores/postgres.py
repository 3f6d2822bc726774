"""The PostgreSQL store: pools that fail fast while the database is unreachable, and the
time-indexed recorder that saves in one round trip.

psycopg_pool's defaults suit a database that is always there: a caller waits up to 30 s for a
connection, and a lost connection is retried with a delay that doubles up to minutes. During an
outage that turns every request into a long hang, and after it the pool may not try again for
seconds. Both the event store's pool (here) and the view's (``projections.postgres``) use the
``FailFast`` mixin instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, retry
from psycopg.sql import SQL, Identifier

from stores.timeindex import INDEX_TABLE

#: The ledger's events table: the library names it after the application (``JobLedger.name``).
EVENTS_TABLE = "jobledger_events"


def postgres_has_table(conninfo: dict[str, Any], table: str) -> bool:
    """Whether the database exists and has ``table``; raises psycopg's error when the server
    cannot be reached (a missing database is an answer: False)."""
    try:
        with psycopg.connect(**conninfo) as db:
            row = db.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    except psycopg.OperationalError as error:
        if "does not exist" in str(error):
            return False
        raise
    return bool(row and row[0])


#: While the database is unreachable (the last connection attempt failed): how long a caller
#: waits for a pooled connection, so it gets its error (a 503) at once ...
UNREACHABLE_WAIT_SECONDS = 0.1
#: ... and how long the pool retries one lost connection before giving up on it; a later demand
#: then connects at once, so the pool is back within about a second of the database.
RECONNECT_SECONDS = 1.0


class FailFast:
    """Mixin for a ``psycopg_pool.ConnectionPool`` subclass (listed before it): short waits
    while the database is unreachable. Create the pool with ``reconnect_timeout=RECONNECT_SECONDS``.
    """

    unreachable = False

    def getconn(self, timeout: float | None = None) -> Any:
        if timeout is None and self.unreachable:
            timeout = UNREACHABLE_WAIT_SECONDS
        return super().getconn(timeout)  # type: ignore[misc]

    def _connect(self, timeout: float | None = None) -> Any:
        try:
            connection = super()._connect(timeout)  # type: ignore[misc]
        except Exception:
            self.unreachable = True
            raise
        self.unreachable = False
        return connection


class FailFastConnectionPool(FailFast, ConnectionPool[Any]):
    """The event store's pool: fails fast while PostgreSQL is unreachable, so the API answers
    503 promptly, and recovers within a second or so (``FailFast``)."""


class FailFastPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory, with a ``FailFastConnectionPool`` (same arguments)."""

    def __init__(self, env: Environment | dict[str, Any] | None):
        super().__init__(env)
        plain = self.datastore.pool
        self.datastore.pool = FailFastConnectionPool(
            get_password_func=plain.get_password_func,
            connection_class=plain.connection_class,
            kwargs=plain.kwargs,
            min_size=plain.min_size,
            max_size=plain.max_size,
            open=False,
            configure=plain._configure,
            timeout=plain.timeout,
            max_waiting=plain.max_waiting,
            max_lifetime=plain.max_lifetime,
            check=plain._check,
            reconnect_timeout=RECONNECT_SECONDS,
        )


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
