"""The log as a stream of job events, each with the job as it was right after it.

``LiveReader`` reads the job events after a log position (a stream's replay); ``LiveFollower``
is one thread per process that reads each new batch of the log as soon as the view has applied
it and hands it to a callback (the fan-out to every open stream). Events reach a stream only
once the view shows them, so a client that reads the list after an event sees it there.

The job as of each event is folded forward from the same job as of its previous event (kept in
a bounded cache), and read from the store only when that is not at hand.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.audit import HistoryEntry, audit_entry
from domain.job import Job
from domain.ledger import JobLedger
from projections.readmodel import ReadModel
from projections.summary import JobSummary

logger = logging.getLogger(__name__)

#: Stream event names by history event type (DESIGN section 11).
EVENT_NAMES = {
    "Created": "job.created",
    "Started": "job.started",
    "ProgressUpdated": "job.progress",
    "ErrorLogged": "job.error",
    "Completed": "job.completed",
    "Failed": "job.failed",
    "Cancelled": "job.cancelled",
    "AttemptFailed": "job.attempt-failed",
    "LeaseExpired": "job.lease-expired",
    "LeaseExtended": "job.lease-extended",
    "CancelRequested": "job.cancel-requested",
    "Retried": "job.retried",
    "Archived": "job.archived",
}
#: Log entries read per page.
PAGE = 500
#: Jobs whose latest state the reader keeps to fold their next event onto.
KEPT_JOBS = 10_000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One job event at its log position, with the job's list row right after it."""

    position: int
    name: str
    entry: HistoryEntry
    job: JobSummary

    @property
    def job_id(self) -> UUID:
        return self.job.id


class LiveReader:
    """Reads job events after a log position, each with the job as of that event."""

    def __init__(self, ledger: JobLedger, kept_jobs: int = KEPT_JOBS) -> None:
        self._ledger = ledger
        self._kept_jobs = kept_jobs
        self._jobs: OrderedDict[UUID, Job] = OrderedDict()

    def read(
        self, after: int, limit: int = PAGE, upto: int | None = None
    ) -> tuple[list[LiveEvent], int]:
        """The job events after ``after`` (at most ``limit`` log entries, none past ``upto``),
        and the position read up to (``after`` when there was nothing)."""
        notifications = self._ledger.recorder.select_notifications(
            after, limit, stop=upto, inclusive_of_start=False
        )
        events: list[LiveEvent] = []
        for notification in notifications:
            event = self._ledger.mapper.to_domain_event(notification)
            name = EVENT_NAMES.get(type(event).__name__)
            if name is None or not isinstance(event, Job.Event):
                continue
            job = self._after(event)
            if job is not None:
                entry = audit_entry(event)
                events.append(LiveEvent(notification.id, name, entry, JobSummary.of(job)))
        return events, notifications[-1].id if notifications else after

    def _after(self, event: Any) -> Job | None:
        job_id: UUID = event.originator_id
        version: int = event.originator_version
        job = self._jobs.pop(job_id, None)
        if job is not None and job.version == version - 1:
            job = event.mutate(job)
        elif version == 1:
            job = event.mutate(None)
        else:
            job = self._load(job_id, version)
        if job is None:
            return None
        self._jobs[job_id] = job
        if len(self._jobs) > self._kept_jobs:
            self._jobs.popitem(last=False)
        return job

    def _load(self, job_id: UUID, version: int) -> Job | None:
        """The job as of ``version``, read from the store (a fresh object, never a cached one:
        this reader folds its own copy forward)."""
        job: Any = self._ledger.repository.get(job_id, version=version)
        return job if isinstance(job, Job) else None


Deliver = Callable[[Sequence[LiveEvent], int], None]


class LiveFollower:
    """One thread that follows the log as the view applies it and delivers each new batch."""

    def __init__(self, ledger: JobLedger, read_model: ReadModel, deliver: Deliver) -> None:
        self._reader = LiveReader(ledger)
        self._read_model = read_model
        self._deliver = deliver
        self._stop = threading.Event()
        #: The log position it starts after: what came before is for replays to read.
        self.start = self._position = ledger.head()
        self._thread = threading.Thread(target=self._follow, name="live-follower", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._read_model.wait_for(self._position + 1, timeout=0.5):
                    continue
                upto = self._read_model.position()
                events, reached = self._reader.read(self._position, upto=upto)
                if reached > self._position:
                    self._position = reached
                    self._deliver(events, reached)
            except Exception:
                logger.exception("following the log for the event streams failed; trying again")
                self._stop.wait(1.0)
