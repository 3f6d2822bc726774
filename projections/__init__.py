"""The read side: the ``job_summary`` view, its projection and runner, queries, rebuild, verify.

Typical composition (one view and one runner per process)::

    ledger = JobLedger(env=store.ledger_env())
    view = open_view(ledger)
    runner = ProjectionRunner(ledger, view).start()
    result = ledger.create_job(...)
    view.wait_for(result.position, timeout=2.0)      # read-your-writes
    page = view.query(JobQuery(statuses=("pending",), limit=20))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventsourcing.popo import POPOFactory
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory

from domain.ledger import JobLedger
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


def open_view(ledger: JobLedger) -> JobSummaryView[Any]:
    """The view that belongs to the ledger's store (creating its tables when missing).

    memory: a view in this process (fed by a runner on this very ledger); SQLite: a file beside
    the events file (``x.db`` -> ``x.view.db``); PostgreSQL: tables in the same database.
    """
    factory = ledger.factory
    if isinstance(factory, POPOFactory):
        return MemorySummaryView()
    if isinstance(factory, SQLiteFactory):
        return SQLiteSummaryView(view_path_for(Path(ledger.env.get("SQLITE_DBNAME", ""))))
    if isinstance(factory, PostgresFactory):
        env = ledger.env
        return PostgresSummaryView(
            {
                "host": env.get("POSTGRES_HOST", "localhost"),
                "port": int(env.get("POSTGRES_PORT", "5432")),
                "user": env.get("POSTGRES_USER", "postgres"),
                "password": env.get("POSTGRES_PASSWORD", ""),
                "dbname": env.get("POSTGRES_DBNAME", "postgres"),
                "connect_timeout": int(float(env.get("POSTGRES_CONNECT_TIMEOUT", "5"))),
            }
        )
    raise TypeError(f"No job_summary view for the store {type(factory).__name__}.")
