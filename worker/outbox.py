"""The worker's answers to the server, batched: progress, errors, heartbeats, complete, fail.

Commands queue in call order and leave in that order, as batches of ``/jobs/commands``: the
first command of a batch waits ``linger`` seconds for company, and while one batch is in flight
the next fills up. One batch at a time keeps each job's answers in order (the server runs a
batch's commands in order). Every command carries its own idempotency key, so a batch sent
again after a network error records nothing twice. A command the server could not take now
(429, 5xx) goes back to the front of the queue until its deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from worker.client import MAX_BATCH_COMMANDS, RETRYABLE_STATUSES, ApiClient, Backoff, GaveUp

logger = logging.getLogger("worker")

#: What a command that never reached the server resolves to.
UNDELIVERED = 0

ResultHandler = Callable[[dict[str, Any]], None]


class NotJSONError(ValueError):
    """A command whose body is not JSON (a handler's result, say)."""


@dataclass(eq=False)
class Pending:
    """One command waiting for its result."""

    encoded: bytes
    give_up_at: float
    result: asyncio.Future[dict[str, Any]] = field(repr=False)


def encode(job_id: str, op: str, body: dict[str, Any]) -> bytes:
    """A batch command as JSON, with a new idempotency key; ``NotJSONError`` if it is not JSON."""
    command = {"jobId": job_id, "op": op, "idempotencyKey": uuid.uuid4().hex, **body}
    try:
        return json.dumps(command, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as error:
        raise NotJSONError(str(error)) from None


class Outbox:
    """Queues commands and sends them in batches; each ``put`` returns its result's future."""

    def __init__(
        self,
        client: ApiClient,
        on_result: ResultHandler,
        *,
        linger: float = 0.002,
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._on_result = on_result
        self._linger = linger
        self._backoff = backoff or Backoff()
        self._queue: deque[Pending] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def put(
        self, encoded: bytes, give_up_after: float, *, ahead: bool = False
    ) -> asyncio.Future[dict[str, Any]]:
        """Queues a command (see ``encode``) to be tried for up to ``give_up_after`` seconds;
        ``ahead`` puts it before the commands already waiting (a heartbeat must not wait behind
        a backlog for the lease it keeps)."""
        result: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        pending = Pending(encoded, time.monotonic() + give_up_after, result)
        if ahead:
            self._queue.appendleft(pending)
        else:
            self._queue.append(pending)
        self._idle.clear()
        self._wake.set()
        return result

    async def drained(self) -> None:
        """Returns once every queued command has its result."""
        await self._idle.wait()

    async def run(self) -> None:
        """Sends batches until cancelled."""
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                await asyncio.sleep(self._linger)
            batch = [
                self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH_COMMANDS))
            ]
            await self._send(batch)

    async def _send(self, batch: list[Pending]) -> None:
        give_up_at = max(pending.give_up_at for pending in batch)
        try:
            results = await self._client.commands(
                [pending.encoded for pending in batch], give_up_at=give_up_at
            )
        except (GaveUp, httpx.HTTPError, ValueError, KeyError) as error:
            logger.error("%d answers not delivered: %s", len(batch), error)
            for pending in batch:
                self._resolve(pending, _undelivered(str(error)))
            return
        retry: list[Pending] = []
        for pending, result in zip(batch, results, strict=True):
            if result["status"] in RETRYABLE_STATUSES and time.monotonic() < pending.give_up_at:
                retry.append(pending)
            else:
                self._resolve(pending, result)
        if retry:
            self._queue.extendleft(reversed(retry))
            await asyncio.sleep(self._backoff.delay(1))

    def _resolve(self, pending: Pending, result: dict[str, Any]) -> None:
        try:
            self._on_result(result)
        except Exception:
            logger.exception("handling the answer %r failed", result)
        if not pending.result.done():
            pending.result.set_result(result)


def _undelivered(reason: str) -> dict[str, Any]:
    return {"jobId": None, "status": UNDELIVERED, "problem": {"detail": reason}}
