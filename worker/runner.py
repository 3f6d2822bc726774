"""``Worker``: claims jobs for its handlers, runs them, and answers for them (DESIGN section 10).

One event loop holds the worker together: a claim loop that asks for as many jobs as there are
free slots (a long-poll), one task per running job, a heartbeat every third of the lease for
every job whose final answer is not yet recorded, and the outbox that batches every answer.
Synchronous handlers run on daemon threads, ``async def`` handlers on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from worker.client import MAX_CLAIM_LIMIT, MAX_CLAIM_TYPES, ApiClient, TokenSource
from worker.context import Discard, JobContext
from worker.outbox import NotJSONError, Outbox, encode
from worker.threads import HandlerThreads

logger = logging.getLogger("worker")

Handler = Callable[[JobContext], Any]

LEASE_LOST = "urn:jobledger:problem:lease-lost"
MAX_REASON_CHARS = 2_000
MIN_LEASE_SECONDS, MAX_LEASE_SECONDS = 5.0, 3600.0
#: The longest a claim waits on the server for a job: also the longest a stop waits for it.
POLL_SECONDS = 5.0
#: The pause after a claim failed in a way no retry covers (a malformed answer, say).
CLAIM_PAUSE_SECONDS = 1.0
#: Exit statuses of ``run``: all work finished; handlers abandoned at the end of the grace
#: period; the server refused the worker (a bad token, a role that may not claim).
EXIT_OK, EXIT_ABANDONED, EXIT_REFUSED = 0, 1, 2


def failure_reason(error: BaseException) -> str:
    """What a failed attempt records of the exception that ended it."""
    return f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]


class Worker:
    """Runs ``handlers`` ({job type: callable taking a ``JobContext``}) on claimed jobs.

    ``run()`` blocks until stopped (``stop()``, SIGTERM or SIGINT) and returns the exit status.
    ``token`` is the bearer token or a callable returning it (called again after a 401).
    """

    def __init__(
        self,
        url: str,
        token: str | TokenSource,
        handlers: Mapping[str, Handler],
        concurrency: int = 10,
        lease_seconds: float = 30.0,
        grace_seconds: float = 30.0,
        name: str | None = None,
        *,
        types: list[str] | None = None,
        poll_seconds: float = POLL_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("handlers must name at least one job type")
        for job_type, handler in handlers.items():
            if not callable(handler):
                raise TypeError(f"the handler for {job_type!r} is not callable: {handler!r}")
        unknown = sorted(set(types or ()) - set(handlers))
        if unknown:
            raise ValueError(f"no handler for the job types {unknown}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS:
            raise ValueError(f"lease_seconds must be 5-3600, got {lease_seconds}")
        if grace_seconds < 0:
            raise ValueError(f"grace_seconds must not be negative, got {grace_seconds}")
        self.url = url
        self.handlers = dict(handlers)
        self.types = list(types or handlers)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.grace_seconds = grace_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._token = token
        self.poll_seconds = poll_seconds
        self._transport = transport
        self._stop_asked = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def stop(self) -> None:
        """Stops claiming; running handlers get ``grace_seconds`` to finish (any thread)."""
        self._stop_asked.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)

    def run(self) -> int:
        """Works until stopped; returns ``EXIT_OK``, ``EXIT_ABANDONED`` or ``EXIT_REFUSED``."""
        return asyncio.run(self._main())

    async def _main(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_asked.is_set():
            self._stopping.set()
        signals = _install_signal_handlers(self._loop, self.stop)
        client = ApiClient(self.url, self._token, transport=self._transport)
        try:
            return await _Session(self, client, self._stopping).run()
        finally:
            await client.close()
            for number in signals:
                self._loop.remove_signal_handler(number)


def _install_signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None]
) -> list[signal.Signals]:
    if threading.current_thread() is not threading.main_thread():
        return []
    numbers = [signal.SIGTERM, signal.SIGINT]
    for number in numbers:
        loop.add_signal_handler(number, stop)
    return numbers


class _Session:
    """One ``run`` of a worker: its tasks, its running jobs, the jobs whose lease it holds."""

    def __init__(self, worker: Worker, client: ApiClient, stopping: asyncio.Event) -> None:
        self.worker = worker
        self.client = client
        self.stopping = stopping
        self.outbox = Outbox(client, self._on_result)
        self.threads = HandlerThreads(worker.concurrency)
        self.running: dict[str, asyncio.Task[None]] = {}
        self.held: dict[str, JobContext] = {}
        self.slot_freed = asyncio.Event()
        self.refused: str | None = None
        self._type_groups = [
            worker.types[i : i + MAX_CLAIM_TYPES]
            for i in range(0, len(worker.types), MAX_CLAIM_TYPES)
        ]

    async def run(self) -> int:
        outbox = asyncio.create_task(self.outbox.run(), name="outbox")
        heartbeats = asyncio.create_task(self._heartbeats(), name="heartbeats")
        claims = asyncio.create_task(self._claims(), name="claims")
        logger.info(
            "worker %s claiming %s from %s with %d slots",
            self.worker.name,
            ", ".join(self.worker.types),
            self.worker.url,
            self.worker.concurrency,
        )
        await self.stopping.wait()
        deadline = time.monotonic() + self.worker.grace_seconds
        await _within(claims, deadline)
        abandoned = await self._finish_running(deadline)
        heartbeats.cancel()
        await self.outbox.drained()
        outbox.cancel()
        self.threads.close()
        if self.refused is not None:
            return EXIT_REFUSED
        if abandoned:
            logger.error("abandoned %d running jobs after the grace period", abandoned)
            return EXIT_ABANDONED
        logger.info("worker %s stopped", self.worker.name)
        return EXIT_OK

    async def _finish_running(self, deadline: float) -> int:
        """Waits until ``deadline`` for the running handlers; returns how many it abandoned.

        Only a handler still running at the deadline is abandoned: one that ended in time has
        its answer waited for by the outbox's drain, however slowly the server takes it.
        """
        tasks = list(self.running.values())
        if tasks:
            logger.info(
                "waiting up to %.1f s for %d running jobs", deadline - time.monotonic(), len(tasks)
            )
            await asyncio.wait(tasks, timeout=max(deadline - time.monotonic(), 0))
        abandoned = list(self.running.values())
        for task in abandoned:
            task.cancel()
        return len(abandoned)

    async def _claims(self) -> None:
        group = 0
        while not self.stopping.is_set():
            free = self.worker.concurrency - len(self.held)
            if free <= 0:
                self.slot_freed.clear()
                await _first(self.slot_freed, self.stopping)
                continue
            types, wait_seconds = self._next_group(group)
            group += 1
            try:
                jobs = await self.client.claim(
                    types=types,
                    limit=min(free, MAX_CLAIM_LIMIT),
                    lease_seconds=self.worker.lease_seconds,
                    wait_seconds=wait_seconds,
                    worker=self.worker.name,
                )
            except httpx.HTTPStatusError as error:
                answer = error.response
                self.refused = f"the server refused a claim: {answer.status_code} {answer.text}"
                logger.error(self.refused)
                self.stopping.set()
                return
            except Exception:
                logger.exception("a claim failed; claiming again in %.1f s", CLAIM_PAUSE_SECONDS)
                await asyncio.sleep(CLAIM_PAUSE_SECONDS)
                continue
            for job in jobs:
                context = self._context(job)
                self.held[context.id] = context
                self.running[context.id] = asyncio.create_task(self._work(context), name=job["id"])

    def _next_group(self, turn: int) -> tuple[list[str], float]:
        """The types of this turn's claim and how long it may wait: with more types than one
        claim takes, the groups take turns and only the last of a round waits for a job."""
        groups = self._type_groups
        last_of_round = turn % len(groups) == len(groups) - 1
        return groups[turn % len(groups)], self.worker.poll_seconds if last_of_round else 0.0

    def _context(self, job: dict[str, Any]) -> JobContext:
        loop = asyncio.get_running_loop()

        def send(op: str, body: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(self._answer, context, op, body)

        context = JobContext(job, send)
        return context

    async def _work(self, context: JobContext) -> None:
        """Runs the job's handler, then answers for it; the job's slot is free again only once
        that answer is recorded (a server slow to take answers slows the claims down, rather
        than leaving claimed jobs to wait in the outbox until their leases lapse)."""
        began = time.monotonic()
        try:
            op, body = await self._call(context)
        finally:
            self.running.pop(context.id, None)
        try:
            outcome = await self._final(context, op, body)
        finally:
            self.held.pop(context.id, None)
            self.slot_freed.set()
        logger.info(
            "job %s attempt %d %s in %.3f s",
            context.id,
            context.attempt,
            outcome,
            time.monotonic() - began,
            extra={
                "job_id": context.id,
                "job_type": context.type,
                "attempt": context.attempt,
                "outcome": outcome,
                "duration": time.monotonic() - began,
            },
        )

    async def _call(self, context: JobContext) -> tuple[str, dict[str, Any]]:
        handler = self.worker.handlers[context.type]
        try:
            if inspect.iscoroutinefunction(handler):
                value = await handler(context)
            else:
                value = await self.threads.run(handler, context)
        except Discard as discard:
            return "fail", {"reason": discard.reason[:MAX_REASON_CHARS], "retry": False}
        except Exception as error:
            return "fail", {"reason": failure_reason(error)}
        return "complete", {"result": value}

    async def _final(self, context: JobContext, op: str, body: dict[str, Any]) -> str:
        """Sends the complete or fail; returns the outcome to log: the job's status after it
        (``completed``, ``retrying``, ``failed``, ``cancelled``), or why it has none."""
        if context.lease_lost:
            return "lease-lost"
        try:
            result = await self._send(context, op, body)
        except NotJSONError as error:
            result = None
            op, body = "fail", {"reason": f"ResultError: the result is not JSON: {error}"}
        if op == "complete" and result is not None and result["status"] == 422:
            detail = (result.get("problem") or {}).get("detail", "refused")
            op, body = "fail", {"reason": f"ResultError: {detail}"[:MAX_REASON_CHARS]}
            result = None
        if result is None:
            result = await self._send(context, op, body)
        if context.lease_lost:
            return "lease-lost"
        if 200 <= result["status"] < 300:
            status: str = result["job"]["status"]
            return status
        return f"unrecorded ({result['status']})"

    def _send(
        self, context: JobContext, op: str, body: dict[str, Any], *, ahead: bool = False
    ) -> asyncio.Future[dict[str, Any]]:
        encoded = encode(context.id, op, {**body, "attempt": context.attempt})
        return self.outbox.put(encoded, self.worker.lease_seconds, ahead=ahead)

    def _answer(self, context: JobContext, op: str, body: dict[str, Any]) -> None:
        """A handler's progress or error, queued unless the attempt lost its lease."""
        if context.lease_lost:
            return
        try:
            self._send(context, op, body)
        except NotJSONError as error:
            logger.warning("job %s: %s not sent, its body is not JSON: %s", context.id, op, error)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.worker.lease_seconds / 3)
            for context in list(self.held.values()):
                if not context.lease_lost:
                    body = {"leaseSeconds": self.worker.lease_seconds}
                    self._send(context, "heartbeat", body, ahead=True)

    def _on_result(self, result: dict[str, Any]) -> None:
        context = self.held.get(result.get("jobId") or "")
        if context is None:
            return
        status = result["status"]
        if 200 <= status < 300:
            if result["job"]["cancelRequested"] and not context.cancelled:
                logger.info("job %s: cancel requested", context.id)
                context._request_cancel()
            return
        problem = result.get("problem") or {}
        if status == 409 and problem.get("type") == LEASE_LOST:
            if not context.lease_lost:
                logger.warning(
                    "job %s attempt %d lost its lease (job %s, attempt %s): its answers stop",
                    context.id,
                    context.attempt,
                    problem.get("jobStatus"),
                    problem.get("attempt"),
                )
            context._lose_lease()
        else:
            logger.warning(
                "job %s: answer refused: %s %s", context.id, status, problem.get("detail")
            )


async def _within(task: asyncio.Task[None], deadline: float) -> None:
    """Waits for ``task`` until ``deadline``, then cancels it."""
    await asyncio.wait([task], timeout=max(deadline - time.monotonic(), 0))
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
