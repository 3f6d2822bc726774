"""The lease sweeper: records ``LeaseExpired`` for attempts whose lease passed, within 2 s.

One sweeper is active per store: the one in the process whose projection runner holds the runner
lock (the runner's leader election; when that process dies, the standby runner that takes the
lock brings its sweeper with it). It reads expired leases from the view and ends each through
the ledger, conditionally on the attempt and lease it read: a job completed, failed or
re-leased meanwhile (a heartbeat the view had not shown yet) is left alone
(``LeaseRenewedError``). Between sweeps it sleeps until the earliest lease the view knows
passes, at most ``interval`` seconds, so a lease granted meanwhile is seen in time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.errors import JobConflictError, JobLedgerError, JobNotFoundError
from domain.ledger import JobLedger
from projections.runner import STORE_OUTAGES
from projections.view import JobSummaryView

logger = logging.getLogger(__name__)

#: The longest sleep between two sweeps; with the view's lag it bounds the rescue delay.
SWEEP_INTERVAL_SECONDS = 0.5
SWEEP_BATCH = 100


@dataclass(frozen=True, slots=True)
class SweeperStatus:
    """What the sweeper has done, for ``jobledger projections status``."""

    active: bool
    #: When the last sweep ran (None: never in this process).
    last_sweep_at: datetime | None
    #: Leases this process's sweeper has ended.
    expired: int


class LeaseSweeper:
    """Ends passed leases in a daemon thread, while ``is_leader()`` (the runner is active)."""

    def __init__(
        self,
        ledger: JobLedger,
        view: JobSummaryView[Any],
        is_leader: Callable[[], bool],
        *,
        interval: float = SWEEP_INTERVAL_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.view = view
        self.is_leader = is_leader
        self.interval = interval
        self.expired = 0
        self.last_sweep_at: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LeaseSweeper:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="lease-sweeper", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def status(self) -> SweeperStatus:
        return SweeperStatus(self.is_leader(), self.last_sweep_at, self.expired)

    def sweep(self) -> int:
        """Ends every lease the view shows as passed now; returns how many it ended."""
        now = self.ledger.clock()
        ended = 0
        for job_id, attempt, lease_expires_at in self.view.expired_leases(now, SWEEP_BATCH):
            try:
                self.ledger.expire_lease(job_id, attempt, lease_expires_at)
                ended += 1
            except (JobConflictError, JobNotFoundError):
                continue
        self.expired += ended
        self.last_sweep_at = now
        return ended

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.interval
            try:
                if self.is_leader():
                    if self.sweep() == SWEEP_BATCH:
                        continue
                    wait = self._until_next_expiry()
            except (JobLedgerError, OSError, *STORE_OUTAGES) as error:
                logger.warning("lease sweeper: the store is unavailable: %s; retrying", error)
            except Exception:
                logger.exception("lease sweeper FAILED; retrying in %.1f s", self.interval)
            self._stop.wait(wait)

    def _until_next_expiry(self) -> float:
        expiry = self.view.next_lease_expiry()
        if expiry is None:
            return self.interval
        seconds = (expiry - self.ledger.clock()).total_seconds()
        return max(0.01, min(self.interval, seconds))
