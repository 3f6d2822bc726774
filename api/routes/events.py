"""``/api/v1/events``: the log's job events as a server-sent event stream (DESIGN section 11).

Each event's ``id`` is its log position. A stream starts after ``Last-Event-ID`` (what a
reconnecting EventSource sends), else after ``?after=N``, else at the current head; it replays
the log from there and then goes live, so a client that reconnects loses nothing. The caller's
token and account are checked again every second: a stream ends when its token expires or its
user is disabled.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import CurrentUser, current_user, oauth2_scheme
from api.errors import NotAuthenticatedError, problem_responses
from api.policy import stream_owner
from api.routing import CheckedRoute
from api.streams import Stream, StreamFilter, StreamHub
from domain.job import MAX_TYPE_CHARS
from projections.live import EVENT_NAMES

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=CheckedRoute)

KEEPALIVE_SECONDS = 15
#: A send that waits longer than this (the client stopped reading) ends the stream.
SEND_TIMEOUT_SECONDS = 10
AUTH_CHECK_SECONDS = 1.0
MAX_FILTER_JOBS = 100
#: Log positions are 64-bit integers in every store.
MAX_POSITION = 2**63 - 1
POSITION_PATTERN = r"^\s*[0-9]{0,18}\s*$"

EventName = StrEnum("EventName", {name: name for name in EVENT_NAMES.values()})  # type: ignore[misc]

STREAM_RESPONSES = {
    200: {
        "description": "The events, as `text/event-stream`: `id` the log position, `event` the "
        "event name, `data` JSON `{jobId, version, type, at, actor, data, job}`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **problem_responses(401, 422, 429, 503),
}


@router.get("/events", response_class=EventSourceResponse, responses=STREAM_RESPONSES)
async def stream_events(
    request: Request,
    user: CurrentUser,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    job_ids: Annotated[
        list[UUID], Query(alias="jobId", max_length=MAX_FILTER_JOBS, description="Only these jobs.")
    ] = [],  # noqa: B006
    job_type: Annotated[
        str | None,
        Query(alias="type", min_length=1, max_length=MAX_TYPE_CHARS, description="Only this type."),
    ] = None,
    events: Annotated[
        list[EventName], Query(alias="event", description="Only these events.")
    ] = [],  # noqa: B006
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_POSITION, description="Start after this log position (Last-Event-ID "
              "wins)."),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", pattern=POSITION_PATTERN,
               description="Resume after this log position (empty: no position)."),
    ] = None,
) -> EventSourceResponse:
    """Every job event the caller may see, in log order, replayed from a position and then live
    (members: their own jobs only)."""
    hub: StreamHub = request.app.state.stream_hub()
    start = _start(last_event_id, after, hub.position)
    accepts = StreamFilter(
        owner=stream_owner(user), job_ids=frozenset(job_ids), job_type=job_type,
        names=frozenset(str(name) for name in events),
    )  # fmt: skip
    stream = hub.open(user.id, accepts)
    return EventSourceResponse(
        _send(request, token, hub, stream, start),
        ping=KEEPALIVE_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
    )


def _start(last_event_id: str | None, after: int | None, head: int) -> int:
    """Where the stream starts: after ``Last-Event-ID``, else ``after``, else the head. An
    empty ``Last-Event-ID`` is no id at all, as the SSE standard has it."""
    text = (last_event_id or "").strip()
    if text:
        return int(text)
    return head if after is None else after


async def _send(
    request: Request, token: str | None, hub: StreamHub, stream: Stream, start: int
) -> AsyncIterator[bytes | ServerSentEvent]:
    """The stream's frames: the replay, then the live events, several to a write when several
    wait (one write per batch, not per event, keeps a busy stream cheap)."""
    try:
        async for page in hub.replay(stream, start):
            yield page
        sent = max(start, stream.since)
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked >= AUTH_CHECK_SECONDS:
                await current_user(request, token)
                checked = time.monotonic()
            try:
                waiting = await stream.next(AUTH_CHECK_SECONDS)
            except TimeoutError:
                continue
            if waiting is None:
                yield ServerSentEvent(comment="too far behind: reconnect with Last-Event-ID")
                return
            frames = [frame for event, frame in waiting if event.position > sent]
            if frames:
                sent = waiting[-1][0].position
                yield b"".join(frames)
    except NotAuthenticatedError:
        return
    finally:
        hub.release(stream)
