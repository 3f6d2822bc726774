"""What the SQLite and PostgreSQL views share: the columns, the indexes and the list statement.

Every list is a keyset walk on ``(created_at, id)``. Without filters it reads one range of the
``(created_at, id)`` index. Otherwise each index leads with its equality filters, then
``status``, then ``created_at, id``, and a query over several statuses (or none, meaning all
six) reads one ordered index range per status, each at most ``offset + limit + 1`` rows, and
merges them, so no supported filter and sort ever scans the table or sorts more than that.

The claim path and the lease sweeper read partial indexes, which hold only the rows they
concern (waiting rows; processing rows with a lease), in the order they ask for.
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
    "priority",
    "run_at",
    "attempt",
    "max_attempts",
    "lease_expires_at",
    "cancel_requested",
)
SELECT_COLUMNS = ", ".join(COLUMNS)

#: Rows a worker may claim (``claimable``, ``next_run_at``), as the partial indexes and the
#: queries that read them say it: in literals (a planner uses a partial index only for a query
#: whose WHERE repeats its predicate, which parameters do not), and wrapped in ``IS TRUE`` so
#: SQLite's planner cannot read the term through the ``status`` index instead (it would, without
#: statistics, then sort every waiting row).
WAITING = "(status IN ('pending', 'retrying')) IS TRUE"
#: Rows whose lease the sweeper watches (``expired_leases``, ``next_lease_expiry``).
LEASED = "(status = 'processing') IS TRUE AND lease_expires_at IS NOT NULL"
#: The claim order (the claim indexes deliver it, after their equality column).
CLAIM_ORDER = "priority DESC, run_at, created_at, id"

#: Index suffix -> (columns, partial index predicate). Their names carry a token, so a shadow's
#: indexes never clash with the live table's (SQLite cannot rename an index).
INDEXES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "created": (("created_at", "id"), None),
    "status": (("status", "created_at", "id"), None),
    "type": (("job_type", "status", "created_at", "id"), None),
    "owner": (("created_by", "status", "created_at", "id"), None),
    "type_owner": (("job_type", "created_by", "status", "created_at", "id"), None),
    "claim": (("priority DESC", "run_at", "created_at", "id"), WAITING),
    "claim_type": (("job_type", "priority DESC", "run_at", "created_at", "id"), WAITING),
    "due": (("run_at",), WAITING),
    "due_type": (("job_type", "run_at"), WAITING),
    "lease": (("lease_expires_at", "id"), LEASED),
}

#: Columns an update writes when the job's status did not change (of them, only the lease is
#: indexed, in the partial lease index: a progress report without a lease stays a HOT update).
PROGRESS_COLUMNS = (
    "total_items",
    "processed_items",
    "progress",
    "error_count",
    "last_error",
    "updated_at",
    "version",
    "lease_expires_at",
    "cancel_requested",
)
#: Columns an update writes when the status changed (every column that can change).
STATUS_COLUMNS = (
    "status",
    "started_at",
    "completed_at",
    "run_at",
    "attempt",
    "max_attempts",
    *PROGRESS_COLUMNS,
)


def index_statements(
    table: str, token: str, existing: Collection[tuple[str, ...]] = ()
) -> list[str]:
    """CREATE INDEX statements for the indexes a table lacks (``existing``: their column names)."""
    statements = []
    for suffix, (columns, where) in INDEXES.items():
        if tuple(c.split()[0] for c in columns) in existing:
            continue
        partial = "" if where is None else f" WHERE {where}"
        statements.append(
            f"CREATE INDEX IF NOT EXISTS js_{token}_{suffix} ON {table} "
            f"({', '.join(columns)}){partial}"
        )
    return statements


def claimable_statement(
    table: str,
    now: Any,
    types: Collection[str] | None,
    limit: int,
    skip: Collection[Any],
    mark: str,
    run_at: str = "run_at",
) -> tuple[str, list[Any]]:
    """The SELECT of the ids ``claimable`` returns, and its parameters (``now`` and ``skip``
    already in the store's types). Any type, or one: one walk of a claim index in claim order,
    stopping at ``limit`` (it steps over the waiting rows not due yet, which priority puts
    first). Several types: each reads its own walk of the type's claim index, at most ``limit``
    rows, and the walks are merged, as a list over several statuses is.

    ``run_at``: what the due filter compares; SQLite passes ``+run_at``, whose unary plus keeps
    its planner from reading a range of the ``due`` index and sorting it, instead of walking the
    claim index in order and stopping at ``limit``.
    """
    conditions = [WAITING, f"{run_at} <= {mark}"]
    if skip:
        conditions.append(f"id NOT IN ({', '.join(mark for _ in skip)})")
    ordered = None if types is None else sorted(set(types))
    if ordered is None or len(ordered) == 1:
        where = " AND ".join(conditions if ordered is None else [f"job_type = {mark}", *conditions])
        statement = f"SELECT id FROM {table} WHERE {where} ORDER BY {CLAIM_ORDER} LIMIT {mark}"
        return statement, [*(ordered or ()), now, *skip, limit]
    where = " AND ".join([f"job_type = {mark}", *conditions])
    branch = (
        f"SELECT id, priority, run_at, created_at FROM {table} WHERE {where} "
        f"ORDER BY {CLAIM_ORDER} LIMIT {mark}"
    )
    branches = " UNION ALL ".join(f"SELECT * FROM ({branch}) AS b{i}" for i in range(len(ordered)))
    params = [p for job_type in ordered for p in (job_type, now, *skip, limit)]
    statement = f"SELECT id FROM ({branches}) AS due ORDER BY {CLAIM_ORDER} LIMIT {mark}"
    return statement, [*params, limit]


def next_run_at_statement(
    table: str, types: Collection[str] | None, mark: str
) -> tuple[str, list[Any]]:
    """The SELECT of the earliest ``run_at`` of waiting rows: one index probe per type."""
    if types is None:
        return f"SELECT run_at FROM {table} WHERE {WAITING} ORDER BY run_at LIMIT 1", []
    branch = (
        f"SELECT run_at FROM {table} WHERE job_type = {mark} AND {WAITING} ORDER BY run_at LIMIT 1"
    )
    ordered = sorted(set(types))
    branches = " UNION ALL ".join(f"SELECT * FROM ({branch}) AS b{i}" for i in range(len(ordered)))
    return f"SELECT min(run_at) FROM ({branches}) AS due", ordered


def expired_leases_statement(table: str, mark: str) -> str:
    """The SELECT of ``expired_leases`` (parameters: now, limit)."""
    return (
        f"SELECT id, attempt, lease_expires_at FROM {table} WHERE {LEASED} "
        f"AND lease_expires_at <= {mark} ORDER BY lease_expires_at, id LIMIT {mark}"
    )


def next_lease_expiry_statement(table: str) -> str:
    """The SELECT of the earliest lease of a processing row."""
    return f"SELECT lease_expires_at FROM {table} WHERE {LEASED} ORDER BY lease_expires_at LIMIT 1"


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
