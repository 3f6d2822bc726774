"""What the SDK and event stream tests share: a real ``jobledger serve`` per backend, and workers.

The SDK is an HTTP client, so it is tested as one: against a server process on each store, with
the worker either in a thread of the test (``running``) or as ``jobledger worker`` processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, backend_store
from tests.reliability.serving import REQUEST_TIMEOUT_SECONDS, ServeProcess, admin_token
from worker import Worker

#: Short leases and backoffs so that rescue and retry happen within a test.
LEASE_SECONDS = 5.0
SERVER_ENV = {"JOBLEDGER_RETRY_BASE_SECONDS": "0.1", "JOBLEDGER_RETRY_MAX_SECONDS": "0.2"}
STOP_SECONDS = 60.0


@dataclass
class Api:
    """The server under test and an admin's client of it."""

    server: ServeProcess
    token: str
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def create(self, job_type: str, **fields: Any) -> str:
        answer = self.http.post("/api/v1/jobs", json={"type": job_type, **fields})
        assert answer.status_code == 201, answer.text
        job_id: str = answer.json()["id"]
        return job_id

    def job(self, job_id: str) -> Any:
        answer = self.http.get(f"/api/v1/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def history(self, job_id: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"/api/v1/jobs/{job_id}/history")
        assert answer.status_code == 200, answer.text
        events: list[dict[str, Any]] = answer.json()["events"]
        return events

    def event_types(self, job_id: str) -> list[str]:
        return [event["type"] for event in self.history(job_id)]


@pytest.fixture(scope="session", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One server per backend for the whole session: each test makes its own jobs of its own
    types (and its own users), so that they never meet."""
    workdir = tmp_path_factory.mktemp(f"sdk-{request.param}")
    with ExitStack() as stack:
        url = backend_store(request.param, workdir, stack)
        server = ServeProcess(url, workdir, SERVER_ENV)
        stack.callback(server.stop)
        token = admin_token(server.url)
        http = stack.enter_context(
            httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        )
        yield Api(server, token, http)
        assert server.unexpected_errors() == []


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """Runs ``worker`` on a thread; on exit stops it and asserts it exited 0."""
    statuses: list[int] = []
    thread = threading.Thread(target=lambda: statuses.append(worker.run()), name="sdk-worker")
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(STOP_SECONDS)
    assert not thread.is_alive(), f"the worker did not stop within {STOP_SECONDS} s"
    assert statuses == [0], f"the worker exited with {statuses}"
