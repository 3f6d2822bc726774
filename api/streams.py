"""Event streams: one hub per process fans the log out to every open stream (DESIGN section 11).

The hub's follower reads each new batch of the log once; the hub formats each event once and
offers it to every stream whose filter takes it. An offer never waits: a stream whose buffer is
full is marked overflowed and ends (its client resumes from its last id), so a slow client
never slows the others. A stream replays the log from where its client asked up to the position
the hub had delivered when the stream opened, then takes the hub's live batches, skipping what
the replay already sent: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from starlette.concurrency import run_in_threadpool

from api.errors import StreamsFullError, TooManyStreamsError
from api.schemas.base import rfc3339
from api.schemas.history import history_data
from api.schemas.jobs import summary_json
from domain.ledger import JobLedger
from projections.live import LiveEvent, LiveFollower, LiveReader
from projections.readmodel import ReadModel

#: Events a stream may hold unsent before it is cut off.
STREAM_BUFFER = 1_000
MAX_STREAMS = 500
MAX_STREAMS_PER_USER = 5
#: Log entries a replay reads at a time.
REPLAY_PAGE = 500


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which events a stream carries: all the caller may see, narrowed by its query."""

    #: Members see only jobs they created (their user id); None: every job.
    owner: str | None
    job_ids: frozenset[UUID] = frozenset()
    job_type: str | None = None
    names: frozenset[str] = frozenset()

    def __call__(self, event: LiveEvent) -> bool:
        job = event.job
        return (
            (self.owner is None or job.created_by == self.owner)
            and (not self.job_ids or job.id in self.job_ids)
            and (self.job_type is None or job.job_type == self.job_type)
            and (not self.names or event.name in self.names)
        )


#: An event ready to send: the event, and its whole SSE frame (``id``, ``event``, ``data``).
Outgoing = tuple[LiveEvent, bytes]
#: Frames sent in one write at most, when several wait.
MAX_FRAMES_PER_WRITE = 500


def sse_frame(event: LiveEvent) -> bytes:
    """The event as one server-sent event: its log position as ``id``, its name, its data."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.position, event.name.encode(), sse_data(event)
    )


def sse_data(event: LiveEvent) -> bytes:
    """The event's ``data``: the job, the event as its history shows it, and the job after it."""
    entry = event.entry
    body: dict[str, Any] = {
        "jobId": event.job_id,
        "version": entry.version,
        "type": entry.type,
        "at": rfc3339(entry.at),
        "actor": entry.actor,
        "data": history_data(entry.data),
        "job": summary_json(event.job),
    }
    return orjson.dumps(body)


class Stream:
    """One client's stream: its filter and the buffer of live events not yet sent."""

    def __init__(self, user_id: UUID, accepts: StreamFilter, since: int, capacity: int) -> None:
        self.user_id = user_id
        self.accepts = accepts
        #: The hub's position when the stream opened: a replay reads the log up to it.
        self.since = since
        self.overflowed = False
        self._buffer: asyncio.Queue[Outgoing | None] = asyncio.Queue(capacity)

    def offer(self, batch: Sequence[Outgoing]) -> None:
        """Takes the events its filter accepts; a full buffer cuts the stream off."""
        if self.overflowed:
            return
        for outgoing in batch:
            if not self.accepts(outgoing[0]):
                continue
            try:
                self._buffer.put_nowait(outgoing)
            except asyncio.QueueFull:
                self.overflowed = True
                while not self._buffer.empty():
                    self._buffer.get_nowait()
                self._buffer.put_nowait(None)
                return

    async def next(self, timeout: float) -> list[Outgoing] | None:
        """The live events waiting (at least one, at most ``MAX_FRAMES_PER_WRITE``), or None
        when the stream overflowed; TimeoutError when none came within ``timeout``."""
        first = await asyncio.wait_for(self._buffer.get(), timeout)
        if first is None:
            return None
        waiting = [first]
        while len(waiting) < MAX_FRAMES_PER_WRITE and not self._buffer.empty():
            outgoing = self._buffer.get_nowait()
            if outgoing is None:
                return None
            waiting.append(outgoing)
        return waiting


class StreamHub:
    """The process's streams and the one log follower that feeds them."""

    def __init__(
        self,
        ledger: JobLedger,
        read_model: ReadModel,
        *,
        buffer: int = STREAM_BUFFER,
        max_streams: int = MAX_STREAMS,
        max_per_user: int = MAX_STREAMS_PER_USER,
    ) -> None:
        self._ledger = ledger
        self._loop = asyncio.get_running_loop()
        self._buffer = buffer
        self._max_streams = max_streams
        self._max_per_user = max_per_user
        self._streams: set[Stream] = set()
        self._follower = LiveFollower(ledger, read_model, self._from_follower)
        #: The log position the live batches have reached (on the event loop).
        self.position = self._follower.start

    def close(self) -> None:
        self._follower.close()

    def open(self, user_id: UUID, accepts: StreamFilter) -> Stream:
        """A new stream, or TooManyStreamsError / StreamsFullError past the limits."""
        if sum(1 for s in self._streams if s.user_id == user_id) >= self._max_per_user:
            raise TooManyStreamsError(
                f"At most {self._max_per_user} event streams per user; close one first."
            )
        if len(self._streams) >= self._max_streams:
            raise StreamsFullError("The server has as many event streams open as it serves.")
        stream = Stream(user_id, accepts, self.position, self._buffer)
        self._streams.add(stream)
        return stream

    def release(self, stream: Stream) -> None:
        self._streams.discard(stream)

    async def replay(self, stream: Stream, after: int) -> AsyncIterator[bytes]:
        """The stream's events from the log, after ``after`` up to where it went live, as the
        frames of a page at a time."""
        reader = LiveReader(self._ledger)
        position = after
        while position < stream.since:
            events, reached = await run_in_threadpool(
                reader.read, position, REPLAY_PAGE, stream.since
            )
            frames = [sse_frame(event) for event in events if stream.accepts(event)]
            if frames:
                yield b"".join(frames)
            if reached == position:
                return
            position = reached

    def _from_follower(self, events: Sequence[LiveEvent], reached: int) -> None:
        self._loop.call_soon_threadsafe(self._deliver, events, reached)

    def _deliver(self, events: Sequence[LiveEvent], reached: int) -> None:
        self.position = reached
        if self._streams and events:
            batch = [(event, sse_frame(event)) for event in events]
            for stream in list(self._streams):
                stream.offer(batch)


class HubOnDemand:
    """The process's hub, started by the first stream (no follower runs while none is open)."""

    def __init__(self, ledger: JobLedger, read_model: ReadModel) -> None:
        self._ledger = ledger
        self._read_model = read_model
        self._hub: StreamHub | None = None

    def __call__(self) -> StreamHub:
        if self._hub is None:
            self._hub = StreamHub(self._ledger, self._read_model)
        return self._hub

    def close(self) -> None:
        if self._hub is not None:
            self._hub.close()
