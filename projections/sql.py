"""What the SQLite and PostgreSQL views share: the columns, the indexes and the list statement.

Every list is a keyset walk on ``(created_at, id)``. Without filters it reads one range of the
``(created_at, id)`` index. Otherwise each index leads with its equality filters, then
``status``, then ``created_at, id``, and a query over several statuses (or none, meaning all
five) reads one ordered index range per status, each at most ``offset + limit + 1`` rows, and
merges them, so no supported filter and sort ever scans the table or sorts more than that.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.job import JobStatus
from projections.query import JobQuery, Keyset

COLUMNS = (
    "id",
    "job_type",
    "status",
    "created_by",
    "total_items",
    "processed_items",
    "progress",
    "error_count",
    "last_error",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
    "version",
)
SELECT_COLUMNS = ", ".join(COLUMNS)

#: Index suffix -> columns. Their names carry a token, so a shadow's indexes never clash with
#: the live table's (SQLite cannot rename an index).
INDEXES = {
    "created": ("created_at", "id"),
    "status": ("status", "created_at", "id"),
    "type": ("job_type", "status", "created_at", "id"),
    "owner": ("created_by", "status", "created_at", "id"),
    "type_owner": ("job_type", "created_by", "status", "created_at", "id"),
}

#: Columns an update writes when the job's status did not change (none of them is indexed).
PROGRESS_COLUMNS = (
    "total_items",
    "processed_items",
    "progress",
    "error_count",
    "last_error",
    "updated_at",
    "version",
)
#: Columns an update writes when the status changed.
STATUS_COLUMNS = (
    "status",
    "started_at",
    "completed_at",
    *PROGRESS_COLUMNS,
)


def index_statements(
    table: str, token: str, existing: Collection[tuple[str, ...]] = ()
) -> list[str]:
    """CREATE INDEX statements for the indexes a table lacks (``existing``: their columns)."""
    return [
        f"CREATE INDEX IF NOT EXISTS js_{token}_{suffix} ON {table} ({', '.join(columns)})"
        for suffix, columns in INDEXES.items()
        if columns not in existing
    ]


def list_statement(
    table: str,
    query: JobQuery,
    after: Keyset | None,
    mark: str,
    time: Callable[[datetime], Any],
    uid: Callable[[UUID], Any],
) -> tuple[str, list[Any]]:
    """The SELECT for one page (``limit + 1`` rows) and its parameters, ``mark`` the placeholder."""
    order = "DESC" if query.sort.descending else "ASC"
    unfiltered = not query.statuses and query.job_type is None and query.created_by is None
    conditions = [] if unfiltered else [f"status = {mark}"]
    common: list[Any] = []
    if query.job_type is not None:
        conditions.append(f"job_type = {mark}")
        common.append(query.job_type)
    if query.created_by is not None:
        conditions.append(f"created_by = {mark}")
        common.append(query.created_by)
    if query.created_since is not None:
        conditions.append(f"created_at >= {mark}")
        common.append(time(query.created_since))
    if query.created_before is not None:
        conditions.append(f"created_at < {mark}")
        common.append(time(query.created_before))
    if after is not None:
        conditions.append(
            f"(created_at, id) {'<' if query.sort.descending else '>'} ({mark}, {mark})"
        )
        common += [time(after.created_at), uid(after.id)]
    ordering = f"ORDER BY created_at {order}, id {order}"
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    branch = f"SELECT {SELECT_COLUMNS} FROM {table} {where}{ordering}"
    if unfiltered:
        return f"{branch} LIMIT {mark} OFFSET {mark}", [*common, query.limit + 1, query.offset]
    statuses = query.statuses or tuple(JobStatus)
    if len(statuses) == 1:
        params = [statuses[0].value, *common, query.limit + 1, query.offset]
        return f"{branch} LIMIT {mark} OFFSET {mark}", params
    fetch = query.offset + query.limit + 1
    branches = " UNION ALL ".join(
        f"SELECT * FROM ({branch} LIMIT {mark}) AS b{i}" for i in range(len(statuses))
    )
    params = [p for status in statuses for p in (status.value, *common, fetch)]
    params += [query.limit + 1, query.offset]
    return f"SELECT * FROM ({branches}) AS page {ordering} LIMIT {mark} OFFSET {mark}", params
