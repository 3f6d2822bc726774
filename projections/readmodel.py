"""The read model as a server uses it: the store's view kept current by a runner, and
read-your-writes (a command answers once the view shows it).

Each server process opens the view and starts a projection runner and a lease sweeper; on
PostgreSQL (and SQLite) only one runner per store is active at a time and the others stand by,
so several processes share one (and the active runner's process sweeps). The view's own store
failures become ``LedgerUnavailableError`` (503), like the ledger's: no driver exception leaves
this module.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, ParamSpec

import anyio.to_thread
import psycopg

from domain.errors import LedgerUnavailableError
from domain.ledger import CommandResult, JobLedger
from projections import JobPage, JobQuery, ProjectionRunner, open_view
from projections.claims import ClaimResult, Claims
from projections.sweeper import LeaseSweeper
from projections.view import JobSummaryView
from stores import Store

logger = logging.getLogger(__name__)

P = ParamSpec("P")

_VIEW_ERRORS = (sqlite3.Error, psycopg.Error, OSError)
#: Threads that read the view for the event loop (``ReadModel.page``), apart from the pool that
#: commands use and hold while they wait for their commit and for the view.
READ_THREADS = 8


class ReadModel:
    """Lists jobs, tells how far the view has got, and waits for it (read-your-writes); holds
    the claims and the lease sweeper that read it."""

    def __init__(
        self,
        view: JobSummaryView[Any],
        runner: ProjectionRunner,
        sweeper: LeaseSweeper | None = None,
    ) -> None:
        self.view = view
        self.runner = runner
        self.sweeper = sweeper or LeaseSweeper(runner.ledger, view, runner.is_active)
        self.claims = Claims(runner.ledger, view, local=runner.is_active)
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="view-reader")

    def claim(self, **kwargs: Any) -> ClaimResult:
        """``Claims.claim`` (raises LedgerUnavailableError when the view is unreachable)."""
        with _view_errors():
            return self.claims.claim(**kwargs)

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

    async def page(self, query: JobQuery) -> JobPage:
        """:meth:`query`, for the event loop: run there when the view's reads stay in this
        process (SQLite, memory), else on the read model's own threads (PostgreSQL).

        Under load a hand-over to a thread and back costs more than an SQLite page (a few
        hundred microseconds): the read waits for the thread to run, then behind everything
        else the loop has ready. A read that waits for the network must not block the loop; it
        is handed over at once to threads commands never hold (anyio's pool, that commands
        hold while they wait for their commit and the view, first yields to the loop twice).
        """
        if self.view.reads_in_process:
            return self.query(query)
        return await asyncio.get_running_loop().run_in_executor(self._readers, self.query, query)

    def close(self) -> None:
        """Stops the read threads (reads in flight finish)."""
        self._readers.shutdown(wait=False)

    def position(self) -> int:
        """The log position the view has reached."""
        with _view_errors():
            return self.view.position()


class Commands:
    """Runs the ledger's commands off the event loop; each returns once the read model shows it."""

    def __init__(self, read_model: ReadModel, timeout: float) -> None:
        self.read_model = read_model
        self.timeout = timeout

    async def run(
        self, command: Callable[P, CommandResult], /, *args: P.args, **kwargs: P.kwargs
    ) -> CommandResult:
        """Runs ``command(*args, **kwargs)`` and the wait for the read model in one worker
        thread."""
        return await anyio.to_thread.run_sync(self.settle, partial(command, *args, **kwargs))

    def settle(self, command: Callable[[], CommandResult]) -> CommandResult:
        """The command's result, once the read model has caught up with it.

        The wait is bounded: when it runs out the command has still happened, so it is answered
        anyway (and logged), rather than inviting the client to repeat it.
        """
        result = command()
        self.shown(result.position)
        return result

    def shown(self, position: int) -> None:
        """Returns once the read model shows ``position`` (a change made without a
        ``CommandResult``, say a user's, at the log's head read after it), or once the bounded
        wait runs out (logged): the change has happened either way."""
        if not self.read_model.wait_for(position, self.timeout):
            logger.warning(
                "The read model did not reach position %d within %.1f s; answering anyway.",
                position, self.timeout,
            )  # fmt: skip


@contextmanager
def open_read_model(ledger: JobLedger, store: Store) -> Iterator[ReadModel]:
    """Opens the store's view and starts its runner on ``ledger``; stops the runner and closes
    the view on exit."""
    view = open_view(store)
    try:
        runner = ProjectionRunner(ledger, view).start()
        read_model = ReadModel(view, runner)
        read_model.sweeper.start()
        try:
            yield read_model
        finally:
            read_model.sweeper.stop()
            read_model.claims.close()
            read_model.close()
            runner.stop()
    finally:
        view.close()


@contextmanager
def _view_errors() -> Iterator[None]:
    try:
        yield
    except _VIEW_ERRORS as error:
        raise LedgerUnavailableError(f"The read model is unavailable: {error}") from error
