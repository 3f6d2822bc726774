"""History bodies: a page of a job's or a user's events, with actors shown as emails where allowed.

Who sees whose email is ``api.policy``'s rule (``may_see_actor``); an actor shown without one
stays an id. An actor that is not a user (the command line's ``cli:<login>``, ``anonymous`` for
failed logins, an id of a deleted store...) stays as recorded, with ``actorEmail`` null.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query
from pydantic import Field

from api.policy import may_see_actor
from api.schemas.base import ResponseModel, Timestamp, rfc3339
from domain.audit import MAX_HISTORY_PAGE, HistoryEntry
from domain.errors import UserNotFoundError
from domain.job import MAX_VERSION
from domain.ledger import JobLedger
from domain.user import User

#: Events per page unless ``limit`` says otherwise.
DEFAULT_HISTORY_PAGE = 100
#: Distinct actors whose emails one resolver remembers (users are few; bounded anyway).
MAX_REMEMBERED_ACTORS = 10_000

#: The ``fromVersion`` query parameter of history pages (give ``= 1`` as the default).
FromVersion = Annotated[
    int,
    Query(alias="fromVersion", ge=1, le=MAX_VERSION, description="The first version to show."),
]
#: The ``limit`` query parameter of history pages (give ``= DEFAULT_HISTORY_PAGE``).
HistoryLimit = Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE, description="Events per page.")]


class HistoryEvent(ResponseModel):
    """One event: when, who, and what it recorded."""

    version: int
    type: str
    at: Timestamp
    actor: str = Field(description="Who did it: a user id, or e.g. cli:<login> for the CLI.")
    actor_email: str | None = Field(
        description="The actor's email, when the actor is a user and the caller may see it."
    )
    data: dict[str, Any]


class History(ResponseModel):
    """A page of a job's events, oldest first; pass ``nextFromVersion`` as ``fromVersion``."""

    job_id: UUID
    events: list[HistoryEvent]
    next_from_version: int | None = Field(description="Null when this page is the last one.")


class UserHistory(ResponseModel):
    """A page of a user's events, oldest first, without secrets (no password hashes)."""

    user_id: UUID
    events: list[HistoryEvent]
    next_from_version: int | None = Field(description="Null when this page is the last one.")


class ActorEmails:
    """Resolves actor ids to emails for one viewer, looking each actor up once.

    The viewer is a user of the API (``api.policy`` decides whose email they may know), or None
    for the command line, which reads the store directly and may know every actor.
    """

    def __init__(self, ledger: JobLedger, viewer: User | None = None) -> None:
        self.ledger = ledger
        self.viewer = viewer
        self._known: dict[str, str | None] = {}

    def email(self, actor: str) -> str | None:
        """The actor's email, when the actor is a user the viewer may know by email."""
        if self.viewer is not None:
            if not may_see_actor(self.viewer, actor):
                return None
            if actor == str(self.viewer.id):
                return self.viewer.email
        if actor not in self._known:
            if len(self._known) >= MAX_REMEMBERED_ACTORS:
                self._known.clear()
            self._known[actor] = self._lookup(actor)
        return self._known[actor]

    def _lookup(self, actor: str) -> str | None:
        try:
            return self.ledger.get_user(UUID(actor)).email
        except (ValueError, UserNotFoundError):
            return None


def history_events(entries: Sequence[HistoryEntry], emails: ActorEmails) -> list[HistoryEvent]:
    """The entries as response events."""
    return [
        HistoryEvent(
            version=e.version, type=e.type, at=e.at, actor=e.actor,
            actor_email=emails.email(e.actor), data=history_data(e.data),
        )
        for e in entries
    ]


def next_from_version(entries: Sequence[HistoryEntry], limit: int, current: int) -> int | None:
    """Where the next page starts: null when this page ended at the version read as current."""
    if len(entries) < limit or entries[-1].version == current:
        return None
    return entries[-1].version + 1


def history_data(fields: dict[str, Any]) -> dict[str, Any]:
    """An event's own fields as camelCase JSON (stored JSON texts decoded, times in RFC 3339)."""
    data: dict[str, Any] = {}
    for name, value in fields.items():
        if name.endswith("_json"):
            name, value = name[: -len("_json")], None if value is None else json.loads(value)
        elif isinstance(value, datetime):
            value = rfc3339(value)
        name = "type" if name == "job_type" else name
        head, *rest = name.split("_")
        data[head + "".join(part.title() for part in rest)] = value
    return data
