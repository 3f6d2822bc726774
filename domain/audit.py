"""Reading a job's past: its history, event by event, and its state at a version or an instant.

``JobAudit`` is mixed into ``JobLedger``. It also writes the time index that ``job_as_of(at=...)``
reads: every save hands the recorder one ``(id, timestamp, version)`` entry per event, which the
recorder stores in the same transaction as the events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import Recording

from domain.errors import InvalidInputError, JobNotFoundError
from domain.job import Job
from domain.retries import store_errors

MAX_HISTORY_PAGE = 1_000
_BASE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "actor", "originator_topic"}
)


@runtime_checkable
class TimeIndex(Protocol):
    """A recorder that can tell which version of an aggregate was current at an instant."""

    def version_at(self, originator_id: UUID, at: datetime) -> int | None: ...


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event in a job's history."""

    version: int
    #: The event's name: Created, Started, ProgressUpdated, ErrorLogged, Completed, ...
    type: str
    at: datetime
    actor: str
    #: The event's own fields; client-supplied JSON comes back as it was sent.
    data: dict[str, Any]


class JobAudit(Application[UUID]):
    """Use cases that read a job's past."""

    if TYPE_CHECKING:

        def get_job(self, job_id: UUID, version: int | None = None) -> Job: ...

    def history(
        self, job_id: UUID, from_version: int | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        """Returns the job's events in version order, from ``from_version`` (default 1)."""
        first = 1 if from_version is None else from_version
        if isinstance(first, bool) or not isinstance(first, int) or first < 1:
            raise InvalidInputError("fromVersion", "must be an integer >= 1")
        if limit is not None and not 1 <= limit <= MAX_HISTORY_PAGE:
            raise InvalidInputError("limit", f"must be between 1 and {MAX_HISTORY_PAGE}")
        with store_errors():
            events = list(self.events.get(job_id, gt=first - 1, limit=limit))
            if not events and (first == 1 or not self._exists(job_id)):
                raise JobNotFoundError(job_id)
        job_events = [event for event in events if isinstance(event, Job.Event)]
        if len(job_events) != len(events):
            raise JobNotFoundError(job_id)
        return [_entry(event) for event in job_events]

    def job_as_of(
        self, job_id: UUID, *, version: int | None = None, at: datetime | None = None
    ) -> Job:
        """Returns the job as it was at ``version``, or after every event at or before ``at``."""
        if (version is None) == (at is None):
            raise InvalidInputError("asOf", "give exactly one of a version or an instant")
        if at is not None:
            version = self._version_at(job_id, at)
        assert version is not None
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInputError("asOfVersion", "must be an integer >= 1")
        current = self.get_job(job_id)
        if version > current.version:
            raise InvalidInputError(
                "asOfVersion", f"must be at most the job's current version {current.version}"
            )
        if version == current.version:
            return current
        return self.get_job(job_id, version=version)

    def _version_at(self, job_id: UUID, at: datetime) -> int:
        if at.tzinfo is None:
            raise InvalidInputError("asOf", "must include a time zone (for example Z or +02:00)")
        recorder = self.recorder
        if not isinstance(recorder, TimeIndex):
            raise NotImplementedError(f"{type(recorder).__name__} keeps no time index")
        with store_errors():
            version = recorder.version_at(job_id, at)
        if version is None:
            raise JobNotFoundError(job_id, f"Job {job_id} did not exist at {at.isoformat()}.")
        return version

    def _exists(self, job_id: UUID) -> bool:
        return bool(list(self.events.get(job_id, limit=1)))

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        processing_event.saved_kwargs["event_timestamps"] = [
            (e.originator_id, getattr(e, "timestamp"), e.originator_version)  # noqa: B009
            for e in processing_event.events
        ]
        return super()._record(processing_event)


def _entry(event: Job.Event) -> HistoryEntry:
    data: dict[str, Any] = {}
    for name, value in vars(event).items():
        if name in _BASE_FIELDS:
            continue
        if name.endswith("_json"):
            data[name.removesuffix("_json")] = None if value is None else json.loads(value)
        else:
            data[name] = value
    return HistoryEntry(
        version=event.originator_version,
        type=type(event).__name__,
        at=event.timestamp,
        actor=event.actor,
        data=data,
    )
