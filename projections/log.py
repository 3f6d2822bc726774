"""Reading the ledger's notification log quickly, for catch-up, rebuild and verify.

The library's ``select_notifications`` builds a ``Notification`` and a ``UUID`` per event, which
costs as much as projecting it. :func:`log_reader` reads the same rows from the recorder's own
table and connections (SQLite, PostgreSQL) straight into plain :data:`Entry` tuples; other
recorders go through ``select_notifications``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

#: One stored event in the log: ``(notification id, job key, version, topic, state)``, the job
#: key being ``UUID.int`` of the job id (ints hash and compare in C; UUIDs in Python).
Entry = tuple[int, int, int, str, bytes]

#: Reads the log: the entries after a position, at most ``limit`` of them, oldest first.
ReadLog = Callable[[int, int], Sequence[Entry]]


def entries(notifications: Iterable[Notification]) -> list[Entry]:
    """The library's notifications as entries."""
    return [
        (n.id, key_of(n.originator_id), n.originator_version, n.topic, n.state)
        for n in notifications
    ]


def key_of(originator_id: Any) -> int:
    """A job id as the int the views key their rows by (from an int, a UUID or a string)."""
    if originator_id.__class__ is int:
        return int(originator_id)
    if isinstance(originator_id, UUID):
        return originator_id.int
    return UUID(str(originator_id)).int


def read_until(read_log: ReadLog, last: int) -> ReadLog:
    """``read_log`` stopped at position ``last``: a loop over it ends even while writers go on."""

    def read(after: int, limit: int) -> Sequence[Entry]:
        if after >= last:
            return ()
        return [entry for entry in read_log(after, min(limit, last - after)) if entry[0] <= last]

    return read


def log_reader(recorder: ApplicationRecorder) -> ReadLog:
    """The fastest way to read this recorder's log."""
    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite_reader(recorder)
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres_reader(recorder)

    def read(after: int, limit: int) -> Sequence[Entry]:
        return entries(
            recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        )

    return read


def _sqlite_reader(recorder: SQLiteApplicationRecorder) -> ReadLog:
    statement = (
        "SELECT rowid, originator_id, originator_version, topic, state "
        f"FROM {recorder.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
    )
    datastore = recorder.datastore

    def read(after: int, limit: int) -> Sequence[Entry]:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (after, limit))
            rows = cursor.fetchall()
        return [(r[0], int(r[1], 16), r[2], r[3], r[4]) for r in rows]

    return read


def _postgres_reader(recorder: PostgresApplicationRecorder) -> ReadLog:
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    statement = (
        "SELECT notification_id, originator_id, originator_version, topic, state "
        f"FROM {table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
    )
    datastore = recorder.datastore

    def read(after: int, limit: int) -> Sequence[Entry]:
        with datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, (after, limit), prepare=True)
            rows = cursor.fetchall()
        return [
            (
                r["notification_id"],
                r["originator_id"].int,
                r["originator_version"],
                r["topic"],
                bytes(r["state"]),
            )
            for r in rows
        ]

    return read
