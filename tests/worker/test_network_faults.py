"""Connections between worker and API cut mid-request: no job lost, none run twice, no event
recorded twice (every answer and claim carries an idempotency key and is sent again)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.served import Api, running
from tests.worker.proxy import faulty_proxy
from tests.worker.test_handlers import finished
from worker import JobContext, Worker

JOBS = 40


def test_dropped_requests_and_lost_answers_lose_nothing_and_record_nothing_twice(api: Api) -> None:
    job_type = f"faulty-{uuid.uuid4().hex[:8]}"
    calls: list[tuple[str, int]] = []

    def handler(context: JobContext) -> Any:
        calls.append((context.id, context.attempt))
        context.progress(1, 3)
        context.log_error("row 2 is empty", item="2")
        context.progress(3)
        return {"rows": 3}

    job_ids = [api.create(job_type) for _ in range(JOBS)]
    with faulty_proxy(api.server.port, drop_request_every=11, drop_answer_every=7) as proxy:
        worker = Worker(proxy.url, api.token, {job_type: handler}, concurrency=4,
                        lease_seconds=30, poll_seconds=0.5)  # fmt: skip
        with running(worker):
            jobs = [finished(api, job_id) for job_id in job_ids]
    assert proxy.dropped["request"] > 0 and proxy.dropped["answer"] > 0, proxy.dropped
    assert sorted(calls) == sorted((job_id, 1) for job_id in job_ids), "a job ran twice"
    for job in jobs:
        assert (job["status"], job["result"], job["errorCount"]) == ("completed", {"rows": 3}, 1)
        assert api.event_types(job["id"]) == [
            "Created", "Started", "ProgressUpdated", "ErrorLogged", "ProgressUpdated", "Completed",
        ]  # fmt: skip
