"""The projection runner: keeps a view in step with the ledger's notification log.

Exactly one runner per view and store is active: it holds the view's runner lock (PostgreSQL
advisory lock, ``flock`` for SQLite, a lock in memory). Others stand by, trying the lock every
``standby_interval`` seconds, and take over when the active one stops or its process dies. The
active runner follows the log (LISTEN/NOTIFY on PostgreSQL; woken in-process and polling on
SQLite) and applies what arrives in batches of up to ``batch_size`` events per transaction.
The active runner reports each batch to the ledger before the view shows it, so the ledger's
cached copies answer reads without the store while they are known to be as new as the view
(``domain.cache``); when the view moved on without it (a rebuild swapped in a newer table), it
starts the ledger's confirmations afresh.

A failure never ends the runner silently: it is logged with its traceback at ERROR level,
counted, and the runner restarts after a backoff that doubles up to ``max_backoff`` seconds.
A store outage (the database unreachable or locked) is logged as one WARNING line and retried
at least every ``OUTAGE_MAX_BACKOFF`` seconds, so the view is current again soon after the store
is back; an outage's retries do not lengthen the backoff of the failures that follow it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresApplicationRecorder

from domain.errors import LedgerUnavailableError
from domain.ledger import JobLedger
from projections.follow import ListenNotifyFollower, PollingFollower
from projections.locks import ExclusiveLock
from projections.log import log_reader
from projections.projection import JobSummaryProjection
from projections.view import JobSummaryView

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
LOCK_CHECK_SECONDS = 1.0
HEALTHY_RUN_SECONDS = 60.0
OUTAGE_MAX_BACKOFF = 1.0
#: Errors that mean the store is unreachable or busy, not that the runner is broken.
STORE_OUTAGES = (
    PersistenceError,
    LedgerUnavailableError,
    psycopg.OperationalError,
    sqlite3.OperationalError,
)


class ProjectionRunner:
    """Follows the ledger's log into a view, in a thread; one active runner per view and store."""

    def __init__(
        self,
        ledger: JobLedger,
        view: JobSummaryView[Any],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = 0.05,
        standby_interval: float = 0.5,
        min_backoff: float = 0.1,
        max_backoff: float = 30.0,
    ) -> None:
        self.ledger = ledger
        self.view = view
        self.projection = JobSummaryProjection(ledger.mapper)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.standby_interval = standby_interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        #: Whether this runner holds the lock and follows the log right now.
        self.active = False
        #: How many times this runner failed and restarted.
        self.failures = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._follower: ListenNotifyFollower | PollingFollower | None = None
        ledger.add_listener(_waker(self._wake))

    def start(self) -> ProjectionRunner:
        """Starts following in a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="job_summary-runner", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops following and releases the lock (another runner may then take over)."""
        self._stop.set()
        self._wake.set()
        follower = self._follower
        if isinstance(follower, ListenNotifyFollower):
            follower.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ProjectionRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def is_active(self) -> bool:
        """Whether this runner holds the lock now (what the lease sweeper follows)."""
        return self.active

    def wait_for(self, position: int, timeout: float = 2.0) -> bool:
        """Waits until the view has applied ``position`` (read-your-writes); False on timeout."""
        return self.view.wait_for(position, timeout)

    def catch_up(self, timeout: float = 60.0) -> int:
        """Brings the view up to the log's head as read now, and returns the view's position.

        Applies the missing events itself when no runner is active; otherwise waits for the active
        one (TimeoutError after ``timeout`` seconds).
        """
        head = self.ledger.head()
        lock = self.view.runner_lock()
        try:
            if lock.acquire():
                position = self.view.position()
                read_log = log_reader(self.ledger.recorder)
                while position < head:
                    batch = read_log(position, self.batch_size)
                    if not batch:
                        break
                    position = self.view.apply(batch, self.projection)
                return position
        finally:
            lock.release()
        if not self.view.wait_for(head, timeout):
            raise TimeoutError(f"The active runner did not reach position {head} in {timeout} s.")
        return self.view.position()

    def _run(self) -> None:
        backoff = self.min_backoff
        lock = self.view.runner_lock()
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    if not lock.acquire():
                        self._stop.wait(self.standby_interval)
                        continue
                    self._follow(lock)
                except Exception as error:
                    self.failures += 1
                    self.last_error = error
                    if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                        backoff = self.min_backoff
                    outage = _is_outage(error)
                    cap = OUTAGE_MAX_BACKOFF if outage else self.max_backoff
                    wait = min(backoff, cap)
                    if outage:
                        logger.warning(
                            "job_summary runner: the store is unavailable (failure %d): %s; "
                            "retrying in %.1f s", self.failures, error, wait,
                        )  # fmt: skip
                    else:
                        logger.exception(
                            "job_summary runner FAILED (failure %d): %s; restarting in %.1f s",
                            self.failures, error, wait,
                        )  # fmt: skip
                    self._release(lock)
                    self._stop.wait(wait)
                    backoff = min(wait * 2, cap)
        finally:
            self._release(lock)

    def _release(self, lock: ExclusiveLock) -> None:
        self.active = False
        self.ledger.view_unreported()
        try:
            lock.release()
        except Exception:
            logger.exception("job_summary runner could not release its lock cleanly")

    def _follow(self, lock: ExclusiveLock) -> None:
        position = self.view.position()
        self.view.observe(position)
        self.ledger.view_reported()
        self.active = True
        logger.info("job_summary runner active (this process holds the runner lock)")
        recorder = self.ledger.recorder
        follower: ListenNotifyFollower | PollingFollower
        if isinstance(recorder, PostgresApplicationRecorder):
            follower = ListenNotifyFollower(
                recorder, position, self._stop, batch_size=self.batch_size
            )
        else:
            follower = PollingFollower(
                log_reader(recorder), position, self._wake, self._stop,
                batch_size=self.batch_size, poll_interval=self.poll_interval,
            )  # fmt: skip
        checked = time.monotonic()
        self._follower = follower
        try:
            for batch in follower.batches():
                self.ledger.view_shows(batch)
                if self.view.apply(batch, self.projection) > batch[-1][0]:
                    self.ledger.view_reported()
                if time.monotonic() - checked > LOCK_CHECK_SECONDS:
                    lock.check()
                    checked = time.monotonic()
        finally:
            self._follower = None
            follower.close()


def _is_outage(error: BaseException) -> bool:
    """Whether the store is unreachable or busy (also behind a lost lock: its connection
    failed)."""
    return isinstance(error, STORE_OUTAGES) or isinstance(error.__cause__, STORE_OUTAGES)


def _waker(event: threading.Event) -> Any:
    def wake(_: int) -> None:
        event.set()

    return wake
