"""Group commit: commands saved at the same time share one transaction.

A store commits one transaction at a time per writer lock (SQLite's single writer, the table
lock that keeps PostgreSQL's notification ids in commit order), and each commit waits for the
disk. Under concurrent load, most of a command's time was its turn at that lock. Here the first
command to arrive writes at once; commands that arrive while it writes queue up, and when it
is done the oldest of them writes the whole queue in one transaction, and so on. Alone, a
command writes exactly as before; together, N commands pay for one commit.

Every caller gets its own outcome, and only once its transaction has committed (or failed).
How a batch is written, and what a failed batch means for each of its items, is the
``write_batch`` function's business.

A submission may carry a deadline: the instant by which it must have its answer, however long it
queued. A batch waits for the store no longer than its earliest deadline; an item that timed out
(``is_timeout``) before its own deadline goes back to the head of the queue and is written again
with the time it has left. So while the store is locked by someone else, each caller gets its
timeout once, counted from its arrival, never once per batch queued before it.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 64
#: An item whose deadline is this close is answered with its timeout instead of written again.
DEADLINE_RESOLUTION_SECONDS = 0.02


class _Pending(Generic[Item, Result]):
    __slots__ = ("deadline", "item", "leads", "outcome", "settled")

    def __init__(self, item: Item, deadline: float | None) -> None:
        self.item = item
        self.deadline = deadline
        self.leads = False
        self.outcome: Result | BaseException | None = None
        #: Set when the outcome is in, or the lead is handed over (only a waiting submitter
        #: needs one).
        self.settled: threading.Event | None = None


class GroupCommit(Generic[Item, Result]):
    """Writes concurrently submitted items in shared batches (at most ``max_batch`` each).

    ``write_batch(items, deadline)`` returns one outcome per item, in order: its result, or the
    exception its submitter should see; ``deadline`` (a ``time.monotonic()`` instant, or None) is
    when it must stop waiting for the store. An exception raised by ``write_batch`` itself is
    every item's. ``is_timeout(error)`` says whether an item's error means "the store was busy
    until the deadline, nothing was written", so that it may be tried again.
    """

    def __init__(
        self,
        write_batch: Callable[[Sequence[Item], float | None], Sequence[Result | BaseException]],
        max_batch: int = MAX_BATCH,
        is_timeout: Callable[[BaseException], bool] = lambda _: False,
    ) -> None:
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._is_timeout = is_timeout
        self._lock = threading.Lock()
        self._queue: list[_Pending[Item, Result]] = []
        self._writing = False
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Submissions not yet answered: queued, or in the batch being written."""
        return self._in_flight

    def submit(self, item: Item, deadline: float | None = None) -> Result:
        """Writes ``item`` (with whatever else is queued) and returns its result, or raises;
        gives up waiting for the store at ``deadline`` (a ``time.monotonic()`` instant)."""
        pending: _Pending[Item, Result] = _Pending(item, deadline)
        with self._lock:
            self._queue.append(pending)
            self._in_flight += 1
            follows = self._writing
            if follows:
                pending.settled = threading.Event()
            self._writing = True
        if follows:
            assert pending.settled is not None
            pending.settled.wait()
        while follows is False or pending.leads:
            follows = True
            self._lead(pending)
        return _result(pending)

    def _lead(self, own: _Pending[Item, Result]) -> None:
        """Writes one batch from the head of the queue (``own`` first), then hands the lead to
        the new head: the next submitter, or ``own`` again when it goes back to be retried."""
        own.leads = False
        with self._lock:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        deadlines = [p.deadline for p in batch if p.deadline is not None]
        try:
            outcomes: Sequence[Result | BaseException] = self._write_batch(
                [p.item for p in batch], min(deadlines, default=None)
            )
        except BaseException as error:
            outcomes = [error, *(_copy(error) for _ in batch[1:])]
        now = time.monotonic()
        again: list[_Pending[Item, Result]] = []
        done: list[_Pending[Item, Result]] = []
        for pending, outcome in zip(batch, outcomes, strict=True):
            if self._has_time_left(pending, outcome, now):
                again.append(pending)
            else:
                pending.outcome = outcome
                done.append(pending)
        with self._lock:
            self._queue[:0] = again
            self._in_flight -= len(done)
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._writing = False
            else:
                successor.leads = True
        for pending in done:
            if pending.settled is not None:
                pending.settled.set()
        if successor is not None and successor is not own and successor.settled is not None:
            successor.settled.set()

    def _has_time_left(
        self, pending: _Pending[Item, Result], outcome: Result | BaseException, now: float
    ) -> bool:
        return (
            isinstance(outcome, BaseException)
            and pending.deadline is not None
            and pending.deadline - now > DEADLINE_RESOLUTION_SECONDS
            and self._is_timeout(outcome)
        )


def _result(pending: _Pending[Item, Result]) -> Result:
    outcome = pending.outcome
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome  # type: ignore[return-value]


def _copy(error: BaseException) -> BaseException:
    """A copy for another thread to raise (raising one object in several threads would tangle
    its traceback); the error itself if it cannot be copied."""
    try:
        duplicate = copy.copy(error)
    except Exception:
        return error
    duplicate.__cause__ = error.__cause__
    return duplicate
