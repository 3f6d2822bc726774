"""The SDK's handlers against a real server: what they return, raise and report lands there."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import httpx

from tests.eventually import eventually
from tests.served import LEASE_SECONDS, Api, running
from worker import Discard, JobContext, Worker

WAIT_SECONDS = 60.0


def unique(name: str) -> str:
    """A job type of this test only: workers of other tests never claim its jobs."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def worker_for(api: Api, handlers: dict[str, Any], **options: Any) -> Worker:
    options.setdefault("lease_seconds", LEASE_SECONDS)
    options.setdefault("poll_seconds", 0.5)
    return Worker(api.url, api.token, handlers, **options)


def finished(api: Api, job_id: str) -> Any:
    """Waits for the job to reach a final status, and returns it."""
    final = ("completed", "failed", "cancelled")
    eventually(lambda: api.job(job_id)["status"] in final, WAIT_SECONDS, what=f"{job_id} to end")
    return api.job(job_id)


def test_a_result_progress_and_errors_land_in_call_order(api: Api) -> None:
    job_type = unique("import")

    def handler(context: JobContext) -> Any:
        context.progress(1, 3)
        context.log_error("row 2 has no name", item="2", details={"row": 2})
        context.progress(3)
        return {"imported": context.data["rows"] - 1}

    job_id = api.create(job_type, data={"rows": 3}, totalItems=3)
    with running(worker_for(api, {job_type: handler}, name="importer")):
        job = finished(api, job_id)
    assert job["status"] == "completed"
    assert (job["result"], job["processedItems"]) == ({"imported": 2}, 3)
    assert [(e["message"], e["item"], e["details"]) for e in job["errorLog"]] == [
        ("row 2 has no name", "2", {"row": 2})
    ]
    assert api.event_types(job_id) == [
        "Created", "Started", "ProgressUpdated", "ErrorLogged", "ProgressUpdated", "Completed",
    ]  # fmt: skip
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in job["attempts"]] == [
        (1, "importer", "completed")
    ]


def test_async_handlers_run_on_the_loop_side_by_side(api: Api) -> None:
    job_type = unique("async")
    inside = 0
    most_inside = 0

    async def handler(context: JobContext) -> Any:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        context.progress(1, 1)
        await asyncio.sleep(0.2)
        inside -= 1
        return context.id

    job_ids = [api.create(job_type) for _ in range(4)]
    with running(worker_for(api, {job_type: handler}, concurrency=4)):
        jobs = [finished(api, job_id) for job_id in job_ids]
    assert [(job["status"], job["result"]) for job in jobs] == [
        ("completed", job_id) for job_id in job_ids
    ]
    assert most_inside > 1, "async handlers ran one at a time"


def test_an_exception_fails_the_attempt_and_is_retried_until_attempts_run_out(api: Api) -> None:
    job_type = unique("flaky")
    calls: list[int] = []

    def handler(context: JobContext) -> Any:
        calls.append(context.attempt)
        raise ValueError(f"the remote answered 502 on attempt {context.attempt}")

    job_id = api.create(job_type, maxAttempts=2)
    with running(worker_for(api, {job_type: handler})):
        job = finished(api, job_id)
    assert calls == [1, 2]
    assert job["status"] == "failed"
    assert job["failureReason"] == "ValueError: the remote answered 502 on attempt 2"
    assert [(a["attempt"], a["outcome"], a["error"]) for a in job["attempts"]] == [
        (1, "failed", "ValueError: the remote answered 502 on attempt 1"),
        (2, "failed", "ValueError: the remote answered 502 on attempt 2"),
    ]
    assert api.event_types(job_id) == ["Created", "Started", "AttemptFailed", "Started", "Failed"]


def test_a_retried_job_succeeds_on_a_later_attempt(api: Api) -> None:
    job_type = unique("transient")

    def handler(context: JobContext) -> Any:
        if context.attempt == 1:
            raise ConnectionError("geocoder timed out")
        return {"attempt": context.attempt}

    job_id = api.create(job_type)
    with running(worker_for(api, {job_type: handler})):
        job = finished(api, job_id)
    assert (job["status"], job["result"], job["attempt"]) == ("completed", {"attempt": 2}, 2)
    assert [a["outcome"] for a in job["attempts"]] == ["failed", "completed"]


def test_discard_fails_the_job_for_good(api: Api) -> None:
    job_type = unique("discard")
    calls: list[int] = []

    def handler(context: JobContext) -> Any:
        calls.append(context.attempt)
        raise Discard("the file is not a CSV")

    job_id = api.create(job_type, maxAttempts=5)
    with running(worker_for(api, {job_type: handler})):
        job = finished(api, job_id)
    assert calls == [1]
    assert (job["status"], job["failureReason"]) == ("failed", "the file is not a CSV")


def test_a_result_that_is_not_json_or_too_big_fails_the_attempt_as_a_result_error(
    api: Api,
) -> None:
    job_type = unique("result")

    def handler(context: JobContext) -> Any:
        return object() if context.data == "object" else "x" * 20_000

    object_job = api.create(job_type, data="object", maxAttempts=1)
    big_job = api.create(job_type, data="big", maxAttempts=1)
    with running(worker_for(api, {job_type: handler})):
        jobs = [finished(api, object_job), finished(api, big_job)]
    assert [job["status"] for job in jobs] == ["failed", "failed"]
    assert jobs[0]["failureReason"].startswith("ResultError: the result is not JSON")
    assert jobs[1]["failureReason"].startswith("ResultError: ")
    assert "at most" in jobs[1]["failureReason"]


class HeartbeatLog(httpx.AsyncBaseTransport):
    """The worker's transport, noting when each answered batch carried a heartbeat for a job."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.heartbeats: list[tuple[float, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        response = await self._inner.handle_async_request(request)
        if b'"op": "heartbeat"' in body:
            self.heartbeats.append((time.monotonic(), body))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def beats_between(self, job_id: str, start: float, end: float) -> int:
        key = job_id.encode()
        return sum(1 for at, body in self.heartbeats if start < at < end and key in body)


def test_a_running_handler_sees_a_cancel_within_one_heartbeat(api: Api) -> None:
    job_type = unique("cancellable")
    started = threading.Event()
    noticed: list[float] = []

    def handler(context: JobContext) -> Any:
        started.set()
        deadline = time.monotonic() + WAIT_SECONDS
        while not context.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        noticed.append(time.monotonic())
        raise RuntimeError("stopped on request")

    log = HeartbeatLog()
    job_id = api.create(job_type)
    with running(worker_for(api, {job_type: handler}, transport=log)):
        assert started.wait(WAIT_SECONDS), "the handler never started"
        asked = api.http.post(f"/api/v1/jobs/{job_id}/cancel", json={"reason": "not needed"})
        assert asked.status_code == 200 and asked.json()["cancelRequested"], asked.text
        asked_at = time.monotonic()
        job = finished(api, job_id)
    assert noticed and noticed[0] < asked_at + WAIT_SECONDS, "the handler never saw the cancel"
    assert log.beats_between(job_id, asked_at, noticed[0]) <= 1
    assert job["status"] == "cancelled"
    assert api.event_types(job_id)[-2:] == ["CancelRequested", "Cancelled"]


def test_a_worker_with_more_types_than_a_claim_takes_claims_them_in_turns(api: Api) -> None:
    job_types = [unique(f"many{i}") for i in range(45)]

    def handler(context: JobContext) -> Any:
        return context.type

    first, last = api.create(job_types[0]), api.create(job_types[-1])
    with running(worker_for(api, dict.fromkeys(job_types, handler))):
        jobs = [finished(api, first), finished(api, last)]
    assert [job["result"] for job in jobs] == [job_types[0], job_types[-1]]


class SlowAnswers(httpx.AsyncBaseTransport):
    """A transport whose answers to ``/jobs/commands`` take ``delay`` seconds, noting how many
    claimed jobs the worker held unanswered each time it claimed more."""

    def __init__(self, delay: float) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._delay = delay
        self.claimed = 0
        self.answered = 0
        self.held_at_claims: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/claim"):
            wanted = json.loads(request.content)["limit"]
            self.held_at_claims.append(self.claimed - self.answered + wanted)
        elif request.url.path.endswith("/commands"):
            await asyncio.sleep(self._delay)
        response = await self._inner.handle_async_request(request)
        await response.aread()
        if request.url.path.endswith("/claim"):
            self.claimed += len(json.loads(response.content)["items"])
        elif request.url.path.endswith("/commands"):
            results = json.loads(response.content)["results"]
            done = [r for r in results if r.get("job") and r["job"]["status"] == "completed"]
            self.answered += len(done)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_a_worker_holds_at_most_its_concurrency_of_unanswered_jobs(api: Api) -> None:
    job_type = unique("backpressure")
    slow = SlowAnswers(delay=0.2)

    async def handler(context: JobContext) -> Any:
        return None

    job_ids = [api.create(job_type) for _ in range(12)]
    with running(worker_for(api, {job_type: handler}, concurrency=3, transport=slow)):
        jobs = [finished(api, job_id) for job_id in job_ids]
    assert [job["status"] for job in jobs] == ["completed"] * 12
    assert slow.held_at_claims and max(slow.held_at_claims) <= 3, slow.held_at_claims


def test_a_handler_that_ends_within_the_grace_period_is_not_abandoned_for_a_slow_answer(
    api: Api,
) -> None:
    """The grace period is for handlers: one that ends in time (0.3 s of work, 1 s of grace) is
    not abandoned because its answer (1.5 s on the way) has not arrived when the grace ends."""
    job_type = unique("slow-answer")
    started = threading.Event()

    def handler(context: JobContext) -> Any:
        started.set()
        time.sleep(0.3)
        return "done"

    job_id = api.create(job_type)
    worker = worker_for(
        api, {job_type: handler}, grace_seconds=1.0, poll_seconds=0.05,
        transport=SlowAnswers(delay=1.5),
    )  # fmt: skip
    statuses: list[int] = []
    thread = threading.Thread(target=lambda: statuses.append(worker.run()))
    thread.start()
    assert started.wait(WAIT_SECONDS), "the handler never ran"
    worker.stop()
    thread.join(WAIT_SECONDS)
    assert statuses == [0]
    assert api.job(job_id)["status"] == "completed"
