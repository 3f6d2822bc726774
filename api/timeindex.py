"""Application recorders that index event timestamps, for "the job as it was at time T".

Each recorder writes one ``(originator_id, timestamp, version)`` row per event in the same
transaction as the event itself (the ledger passes them as ``event_timestamps``), so the index is
never behind the log, and ``version_at()`` answers with one indexed lookup instead of a scan of
the job's stream. Selected through the library's ``APPLICATION_RECORDER_TOPIC`` setting.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

INDEX_TABLE = "event_timestamps"
EventTimestamp = tuple[UUID, datetime, int]


def _sortable(at: datetime) -> str:
    """UTC ISO text with fixed microseconds, so that text order is time order in SQLite."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class SQLiteTimeIndexedRecorder(SQLiteApplicationRecorder):
    """SQLite application recorder with a timestamp index beside the events."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {INDEX_TABLE} ("
            "originator_id TEXT, originator_version INTEGER, timestamp TEXT, "
            "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID",
            f"CREATE INDEX IF NOT EXISTS {INDEX_TABLE}_by_time "
            f"ON {INDEX_TABLE} (originator_id, timestamp, originator_version)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        rows = [(i.hex, v, _sortable(t)) for i, t, v in kwargs.get("event_timestamps", ())]
        c.executemany(f"INSERT INTO {INDEX_TABLE} VALUES (?, ?, ?)", rows)
        return notification_ids

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest version recorded at or before ``at`` (None when there is none)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT MAX(originator_version) FROM {INDEX_TABLE} "
                "WHERE originator_id = ? AND timestamp <= ?",
                (originator_id.hex, _sortable(at)),
            )
            version: int | None = c.fetchone()[0]
            return version


class PostgresTimeIndexedRecorder(PostgresApplicationRecorder):
    """PostgreSQL application recorder with a timestamp index beside the events.

    The index rows are written first in the transaction's pipeline, so the table has no unique
    key: a lost race must fail on the events' own key, which the library reports as such.
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(INDEX_TABLE))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, timestamp timestamptz NOT NULL)"
            ).format(table)
        )
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} ({2})").format(
                Identifier(f"{INDEX_TABLE}_by_time"),
                table,
                SQL("originator_id, timestamp, originator_version"),
            )
        )
        self._insert_index = SQL(
            "INSERT INTO {0} SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::timestamptz[])"
        ).format(table)
        self._select_version = SQL(
            "SELECT MAX(originator_version) AS version FROM {0} "
            "WHERE originator_id = %s AND timestamp <= %s"
        ).format(table)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        entries: list[tuple[UUID, datetime, int]] = kwargs.get("event_timestamps", [])
        if entries:
            ids, times, versions = zip(*entries, strict=True)
            curs.execute(
                self._insert_index, (list(ids), list(versions), list(times)), prepare=False
            )

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest version recorded at or before ``at`` (None when there is none)."""
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
            bisect.insort(self._timestamps[originator_id], (at, version))
        return notification_ids

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest version recorded at or before ``at`` (None when there is none)."""
        with self._database_lock:
            entries = self._timestamps.get(originator_id, [])
            upto = bisect.bisect_right(entries, (at, float("inf")))
            return max((version for _, version in entries[:upto]), default=None)


class TimeIndexedPOPOFactory(POPOFactory):
    """The library's in-memory factory, with the time-indexed recorder."""

    def application_recorder(self) -> ApplicationRecorder:
        return POPOTimeIndexedRecorder()
