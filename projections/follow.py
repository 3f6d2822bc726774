"""Log followers: each yields batches of new notifications, oldest first, as they are recorded.

- :class:`ListenNotifyFollower` (PostgreSQL) reads the library's LISTEN/NOTIFY subscription by
  whole pulled chunks: each batch is everything that has arrived (at least one chunk, up to
  ``batch_size`` events), so a catch-up commits hundreds of events per transaction while a live
  event is applied as soon as it lands.
- :class:`PollingFollower` (SQLite, and the in-memory store) selects from the recorder, woken by
  the ledger right after each save in this process, and looks again every ``poll_interval``
  seconds for writers in other processes (eventsourcing 9.5 has no SQLite subscription).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence

from eventsourcing.persistence import Notification, ShutDown
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresSubscription

from projections.log import Entry, ReadLog, entries


class PollingFollower:
    """Follows the log by selecting from it whenever woken, or every ``poll_interval`` seconds."""

    def __init__(
        self,
        read_log: ReadLog,
        after: int,
        wake: threading.Event,
        stop: threading.Event,
        *,
        batch_size: int,
        poll_interval: float,
    ) -> None:
        self._read_log = read_log
        self._after = after
        self._wake = wake
        self._stop = stop
        self._batch_size = batch_size
        self._poll_interval = poll_interval

    def batches(self) -> Iterator[Sequence[Entry]]:
        while not self._stop.is_set():
            self._wake.clear()
            batch = self._read_log(self._after, self._batch_size)
            if batch:
                self._after = batch[-1][0]
                yield batch
            else:
                self._wake.wait(self._poll_interval)

    def close(self) -> None:
        self._wake.set()


class ListenNotifyFollower:
    """Follows the log through the library's LISTEN/NOTIFY subscription (PostgreSQL)."""

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        after: int,
        stop: threading.Event,
        *,
        batch_size: int,
    ) -> None:
        _discard_dropped_connections(recorder)
        self._subscription = _BatchingSubscription(recorder, gt=after)
        self._subscription.__enter__()
        self._stop = stop
        self._batch_size = batch_size

    def batches(self) -> Iterator[Sequence[Entry]]:
        while not self._stop.is_set():
            batch = self._subscription.next_batch(timeout=0.5, limit=self._batch_size)
            if batch:
                yield entries(batch)

    def interrupt(self) -> None:
        """Ends ``batches()`` from another thread."""
        self._subscription.stop()

    def close(self) -> None:
        self._subscription.__exit__(None, None, None)


def _discard_dropped_connections(recorder: PostgresApplicationRecorder) -> None:
    """Replaces the connections of the ledger's pool that the server has dropped (say, it
    restarted while they were idle), before the subscription takes two of them.

    Its listener holds one for the subscription's life, and a dropped one fails at once and
    ends the subscription (the runner then restarts after its backoff); its puller retries
    a dropped one, but only after 0.2 s each.
    """
    pool = recorder.datastore.pool
    if not pool.closed:
        pool.check()


class _BatchingSubscription(PostgresSubscription):
    """The library's subscription, read a pulled chunk at a time instead of one by one.

    Its listener thread LISTENs and its puller thread selects new notifications (up to 500) into
    a queue whenever one is announced; taking whole chunks from that queue lets the runner apply
    a catch-up in large transactions and a live event as soon as it lands, without a thread of
    its own in between. (Reads the library's queue: eventsourcing is pinned to 9.5.)
    """

    def next_batch(self, timeout: float, limit: int) -> Sequence[Notification]:
        """What has arrived (whole chunks, up to ``limit``); ``[]`` after ``timeout`` or a stop."""
        chunks = self._notifications_queue
        batch: list[Notification] = []
        try:
            batch = list(chunks.get(timeout=timeout))
            chunks.task_done()
            while len(batch) < limit:
                batch += chunks.get_nowait()
                chunks.task_done()
        except queue.Empty:
            pass
        except ShutDown:
            if self._thread_error is not None:
                raise self._thread_error from None
            return []
        return batch
