"""The read model as the API uses it: the store's job_summary view, kept current by a runner.

Each API process opens the view and starts a projection runner; on PostgreSQL (and SQLite) only
one runner per store is active at a time and the others stand by, so several workers share one.
The view's own store failures become ``LedgerUnavailableError`` (503), like the ledger's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from api.settings import Settings
from domain.errors import LedgerUnavailableError
from domain.ledger import JobLedger
from projections import JobPage, JobQuery, ProjectionRunner, open_view
from projections.view import JobSummaryView

_VIEW_ERRORS = (sqlite3.Error, psycopg.Error, OSError)


class ReadModel:
    """Lists jobs, tells how far the view has got, and waits for it (read-your-writes)."""

    def __init__(self, view: JobSummaryView[Any], runner: ProjectionRunner) -> None:
        self.view = view
        self.runner = runner

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits until the view has applied ``position``; False when ``timeout`` ran out.

        While this process's runner is the active one, every write to the view happens here and
        wakes the waiters at once, so they do not read the store meanwhile; otherwise (another
        process's runner) they look at the stored position as the view prescribes.
        """
        with _view_errors():
            return self.view.wait_for(position, timeout, local=self.runner.active)

    def query(self, query: JobQuery) -> JobPage:
        """One page of jobs (raises InvalidInputError for a bad cursor)."""
        with _view_errors():
            return self.view.query(query)

    def position(self) -> int:
        """The log position the view has reached."""
        with _view_errors():
            return self.view.position()


@contextmanager
def open_read_model(ledger: JobLedger, settings: Settings) -> Iterator[ReadModel]:
    """Opens the view and starts its runner; stops the runner and closes the view on exit."""
    view = open_view(ledger)
    try:
        runner = ProjectionRunner(ledger, view).start()
        try:
            yield ReadModel(view, runner)
        finally:
            runner.stop()
    finally:
        view.close()


@contextmanager
def _view_errors() -> Iterator[None]:
    try:
        yield
    except _VIEW_ERRORS as error:
        raise LedgerUnavailableError(f"The read model is unavailable: {error}") from error
