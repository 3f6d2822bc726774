"""The read side: the ``job_summary`` view, its projection and runner, queries, rebuild, verify.

Typical composition (one view and one runner per process)::

    ledger = JobLedger(env=store.ledger_env())
    view = open_view(store)
    runner = ProjectionRunner(ledger, view).start()
    result = ledger.create_job(...)
    view.wait_for(result.position, timeout=2.0)      # read-your-writes
    page = view.query(JobQuery(statuses=("pending",), limit=20))
"""

from __future__ import annotations

from typing import Any

from projections.memory import MemorySummaryView
from projections.postgres import PostgresSummaryView
from projections.projection import JobSummaryProjection
from projections.query import JobPage, JobQuery, SortOrder
from projections.rebuild import RebuildProgress, rebuild
from projections.runner import ProjectionRunner
from projections.sqlite import SQLiteSummaryView, view_path_for
from projections.summary import JobSummary, SummaryCounts
from projections.verify import VerifyReport, verify
from projections.view import JobSummaryView
from stores import Store

__all__ = [
    "JobPage",
    "JobQuery",
    "JobSummary",
    "JobSummaryProjection",
    "JobSummaryView",
    "MemorySummaryView",
    "PostgresSummaryView",
    "ProjectionRunner",
    "RebuildProgress",
    "SQLiteSummaryView",
    "SortOrder",
    "SummaryCounts",
    "VerifyReport",
    "open_view",
    "rebuild",
    "verify",
]


def open_view(store: Store) -> JobSummaryView[Any]:
    """The view that belongs to the store (creating its tables when missing).

    memory: a view in this process (fed by a runner on this process's ledger); SQLite: a file
    beside the events file (``x.db`` -> ``x.view.db``); PostgreSQL: tables in the same database,
    reached with the store's own connection settings.
    """
    if store.kind == "memory":
        return MemorySummaryView()
    if store.kind == "sqlite":
        assert store.path is not None
        return SQLiteSummaryView(view_path_for(store.path))
    return PostgresSummaryView(store.postgres_conninfo())
