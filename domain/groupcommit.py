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
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 64


class _Pending(Generic[Item, Result]):
    __slots__ = ("item", "leads", "outcome", "settled")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.leads = False
        self.outcome: Result | BaseException | None = None
        #: Set when the outcome is in, or the lead is handed over (only a waiting submitter
        #: needs one).
        self.settled: threading.Event | None = None


class GroupCommit(Generic[Item, Result]):
    """Writes concurrently submitted items in shared batches (at most ``max_batch`` each).

    ``write_batch(items)`` returns one outcome per item, in order: its result, or the exception
    its submitter should see. An exception raised by ``write_batch`` itself is every item's.
    """

    def __init__(
        self,
        write_batch: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending[Item, Result]] = []
        self._writing = False

    def submit(self, item: Item) -> Result:
        """Writes ``item`` (with whatever else is queued) and returns its result, or raises."""
        pending: _Pending[Item, Result] = _Pending(item)
        with self._lock:
            self._queue.append(pending)
            follows = self._writing
            if follows:
                pending.settled = settled = threading.Event()
            self._writing = True
        if follows:
            settled.wait()
            if not pending.leads:
                return _result(pending)
        self._lead()
        return _result(pending)

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            outcomes: Sequence[Result | BaseException] = self._write_batch(
                [p.item for p in batch]
            )
        except BaseException as error:
            outcomes = [error, *(_copy(error) for _ in batch[1:])]
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.outcome, pending.leads = outcome, False
        with self._lock:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._writing = False
            else:
                successor.leads = True
        for pending in batch:
            if pending.settled is not None:
                pending.settled.set()
        if successor is not None and successor.settled is not None:
            successor.settled.set()


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
