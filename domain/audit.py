"""Reading a job's past: its history, event by event, and its state at a version or an instant.

``JobAudit`` is mixed into ``JobLedger``. It also writes the time index that ``job_as_of(at=...)``
reads: a save hands the recorder an ``(id, timestamp, version)`` entry for each job event at an
indexed version (the first, then every ``TIME_INDEX_STRIDE``-th), which the recorder stores in the
same transaction as the events. A job's events are in time order (``Job.trigger_event``), so the
newest indexed version at or before an instant, and the at most ``TIME_INDEX_STRIDE - 1`` events
after it, say exactly which version was current then: one indexed lookup and one short read,
never a scan of the stream, and an index row for one command in a hundred instead of each.

Users' histories and the export of the whole log (``every_event``) come from the same events. No
audit entry ever carries a secret: the fields in ``SECRET_FIELDS`` (password hashes) are dropped,
so a ``PasswordChanged`` entry says *that* and *when*, never *what*.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import takewhile
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import Recording

from domain.errors import InvalidInputError, JobNotFoundError, UserNotFoundError
from domain.job import Job
from domain.retries import store_errors
from domain.user import User, UserDirectory

MAX_HISTORY_PAGE = 1_000
#: The time index records a job's version 1 and every multiple of this: the snapshot interval,
#: so the state at an instant is a snapshot plus at most this many events minus one.
TIME_INDEX_STRIDE = 100
#: Events read from the log per query while exporting it: memory stays flat however long it is.
EXPORT_PAGE = 500
#: Event fields that never appear in an audit entry.
SECRET_FIELDS = frozenset({"password_hash"})
_BASE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "actor", "originator_topic"}
)
_KINDS: tuple[tuple[type[Any], str], ...] = (
    (Job.Event, "job"), (User.Event, "user"), (UserDirectory.Event, "userDirectory"),
)


@runtime_checkable
class TimeIndex(Protocol):
    """A recorder that can tell which version of an aggregate was current at an instant."""

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest indexed version recorded at or before ``at`` (None when there is none)."""


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


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event of the whole log, for export: where it is in the log and whose it is."""

    #: The event's notification id: its position in the log.
    position: int
    #: The kind of aggregate: ``job``, ``user`` or ``userDirectory``.
    aggregate: str
    aggregate_id: UUID
    entry: HistoryEntry


class JobAudit(Application[UUID]):
    """Use cases that read a job's past."""

    if TYPE_CHECKING:

        def get_job(self, job_id: UUID, version: int | None = None) -> Job: ...

    def history(
        self, job_id: UUID, from_version: int | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        """Returns the job's events in version order, from ``from_version`` (default 1)."""
        events = self._events(job_id, from_version, limit, lambda: JobNotFoundError(job_id))
        if not all(isinstance(event, Job.Event) for event in events):
            raise JobNotFoundError(job_id)
        return [audit_entry(event) for event in events]

    def user_history(
        self, user_id: UUID, from_version: int | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        """Returns the user's events in version order, without secrets (no password hashes)."""
        events = self._events(user_id, from_version, limit, lambda: UserNotFoundError(user_id))
        if not all(isinstance(event, User.Event) for event in events):
            raise UserNotFoundError(user_id)
        return [audit_entry(event) for event in events]

    def every_event(
        self, since: datetime | None = None, page_size: int = EXPORT_PAGE
    ) -> Iterator[LoggedEvent]:
        """Yields every event of the log in log order (those at or after ``since``), page by page.

        Only one page of the log is held at a time, so an export of any length runs in bounded
        memory. Secrets are dropped as in every audit entry.
        """
        if since is not None and since.tzinfo is None:
            raise InvalidInputError("since", "must include a time zone (for example Z or +02:00)")
        start: int | None = None
        while True:
            with store_errors():
                page = self.recorder.select_notifications(
                    start, page_size, inclusive_of_start=start is None
                )
            for notification in page:
                event = self.mapper.to_domain_event(notification)
                if since is not None and _time_of(event) < since:
                    continue
                yield LoggedEvent(
                    position=notification.id,
                    aggregate=_kind(event),
                    aggregate_id=event.originator_id,
                    entry=audit_entry(event),
                )
            if len(page) < page_size:
                return
            start = page[-1].id

    def _events(
        self,
        aggregate_id: UUID,
        from_version: int | None,
        limit: int | None,
        not_found: Callable[[], Exception],
    ) -> list[Any]:
        first = 1 if from_version is None else from_version
        if isinstance(first, bool) or not isinstance(first, int) or first < 1:
            raise InvalidInputError("fromVersion", "must be an integer >= 1")
        if limit is not None and not 1 <= limit <= MAX_HISTORY_PAGE:
            raise InvalidInputError("limit", f"must be between 1 and {MAX_HISTORY_PAGE}")
        with store_errors():
            events = list(self.events.get(aggregate_id, gt=first - 1, limit=limit))
            if not events and (first == 1 or not self._exists(aggregate_id)):
                raise not_found()
        return events

    def job_as_of(
        self, job_id: UUID, *, version: int | None = None, at: datetime | None = None
    ) -> Job:
        """Returns the job as it was at ``version``, or after every event at or before ``at``;
        with both, the earlier of those two states. A version the job has not reached (yet) is
        not found, like an instant before the job existed."""
        if version is None and at is None:
            raise InvalidInputError("asOf", "give a version, an instant, or both")
        current = None
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise InvalidInputError("asOfVersion", "must be an integer >= 1")
            current = self.get_job(job_id)
            if version > current.version:
                raise JobNotFoundError(
                    job_id,
                    f"Job {job_id} has no version {version}: its current version is "
                    f"{current.version}.",
                )
        if at is not None:
            past = self._job_at(job_id, at)
            if version is None or past.version <= version:
                return past
        assert version is not None and current is not None
        if version == current.version:
            return current
        with store_errors():
            past = self.repository.get(job_id, version=version, projector_func=_fold)
        if not isinstance(past, Job):
            raise JobNotFoundError(job_id)
        return past

    def _job_at(self, job_id: UUID, at: datetime) -> Job:
        """The job after its last event at or before ``at``: from the newest indexed version
        then, through the events after it up to the next indexed version."""
        if at.tzinfo is None:
            raise InvalidInputError("asOf", "must include a time zone (for example Z or +02:00)")
        recorder = self.recorder
        if not isinstance(recorder, TimeIndex):
            raise NotImplementedError(f"{type(recorder).__name__} keeps no time index")
        with store_errors():
            start = recorder.version_at(job_id, at)
            if start is None:
                raise JobNotFoundError(job_id, f"Job {job_id} did not exist at {at.isoformat()}.")
            past = self.repository.get(job_id, version=start, projector_func=_fold)
            next_indexed = (start // TIME_INDEX_STRIDE + 1) * TIME_INDEX_STRIDE
            window = self.events.get(job_id, gt=start, lte=next_indexed - 1)
            past = _fold(past, takewhile(lambda event: _time_of(event) <= at, window))
        if not isinstance(past, Job):
            raise JobNotFoundError(job_id)
        return past

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(list(self.events.get(aggregate_id, limit=1)))

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Hands the recorder the time index's entries with the events.

        Overrides the library's private ``Application._record`` (checked against eventsourcing
        9.5.6; pyproject.toml pins 9.5.x): it is the one step every save passes through, and
        ``ProcessingEvent.saved_kwargs`` (which it passes to ``insert_events``) is the library's
        own channel for extra recorder arguments; there is no public hook for either.
        """
        processing_event.saved_kwargs["event_timestamps"] = [
            (e.originator_id, _time_of(e), e.originator_version)
            if _time_indexed(e)
            else (e.originator_id, None, e.originator_version)
            for e in processing_event.events
        ]
        return super()._record(processing_event)


def audit_entry(event: Any) -> HistoryEntry:
    """An event as an audit entry: its version, type, time, actor and own fields (no secrets)."""
    data: dict[str, Any] = {}
    for name, value in vars(event).items():
        if name in _BASE_FIELDS or name in SECRET_FIELDS:
            continue
        if name.endswith("_json"):
            data[name.removesuffix("_json")] = None if value is None else json.loads(value)
        else:
            data[name] = value
    return HistoryEntry(
        version=event.originator_version,
        type=type(event).__name__,
        at=event.timestamp,
        actor=getattr(event, "actor", ""),
        data=data,
    )


def _fold(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's default projector without its per-event protocol ``isinstance`` assertion,
    which costs more than applying the event (Python 3.11's runtime-checkable protocols)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _time_of(event: Any) -> datetime:
    at: datetime = event.timestamp
    return at


def _time_indexed(event: Any) -> bool:
    version: int = event.originator_version
    return isinstance(event, Job.Event) and (version == 1 or version % TIME_INDEX_STRIDE == 0)


def _kind(event: object) -> str:
    return next((kind for cls, kind in _KINDS if isinstance(event, cls)), type(event).__name__)
