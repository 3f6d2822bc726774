"""End to end: a real ``jobledger serve`` process on SQLite and PostgreSQL, driven over HTTP.

Follows the README's curl walkthrough (setup, token, create, start, progress, complete, list with
filters, history, cancel) and the original job API's checks, asserting statuses and bodies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import on_backends

PASSWORD = "correct horse battery"
STARTUP_SECONDS = 30


class Server:
    """A ``jobledger serve`` subprocess on a free localhost port."""

    def __init__(self, store_url: str, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        env = {
            **os.environ,
            "JOBLEDGER_DATABASE_URL": store_url,
            "JOBLEDGER_DATA_DIR": str(workdir / "data"),
        }
        env.pop("JOBLEDGER_JWT_SECRET", None)
        command = [str(Path(sys.executable).with_name("jobledger")), "serve", "--port",
                   str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early:\n{self.output()}"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer in {STARTUP_SECONDS} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """Sends SIGTERM and returns the exit status (uvicorn re-raises the signal once it has
        finished the requests in flight and shut the app down)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(store_url, tmp_path)
    try:
        yield running
    finally:
        running.stop()
        print(running.output())


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(http: httpx.Client, email: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    return bearer(response.json()["access_token"])


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@on_backends("sqlite", "postgresql")
def test_the_readme_walkthrough(server: Server, http: httpx.Client) -> None:
    assert f"serving {server.url}" in server.output()

    setup = ok(http.post("/api/v1/auth/setup",
                         json={"email": "admin@example.com", "password": PASSWORD}), 201)
    admin = bearer(setup["accessToken"])
    for email, role in (("worker@example.com", "worker"), ("alice@example.com", "member")):
        ok(http.post("/api/v1/users", json={"email": email, "password": PASSWORD, "role": role},
                     headers=admin), 201)
    worker, alice = login(http, "worker@example.com"), login(http, "alice@example.com")

    created = http.post("/api/v1/jobs", json={"type": "import", "data": {"file": "a.csv"},
                                              "totalItems": 100}, headers=alice)
    job = ok(created, 201)
    url = created.headers["location"]
    assert url == f"/api/v1/jobs/{job['id']}" and created.headers["etag"] == '"1"'
    assert ok(http.post(f"{url}/start", headers=worker))["status"] == "processing"
    assert ok(http.post(f"{url}/progress", json={"processedItems": 40}, headers=worker)
              )["progress"] == 40
    assert ok(http.get(f"{url}/progress"))["progress"] == 40
    done = ok(http.post(f"{url}/complete", json={"result": {"rows": 100}}, headers=worker))
    assert (done["status"], done["progress"], done["result"]) == ("completed", 100, {"rows": 100})

    listed = ok(http.get("/api/v1/jobs", params={"status": "completed", "type": "import"},
                         headers=alice))
    assert [item["id"] for item in listed["items"]] == [job["id"]]
    history = ok(http.get(f"{url}/history", headers=alice))
    assert [e["type"] for e in history["events"]] == ["Created", "Started", "ProgressUpdated",
                                                      "Completed"]

    second = ok(http.post("/api/v1/jobs", json={"type": "export"}, headers=alice), 201)
    assert ok(http.delete(f"/api/v1/jobs/{second['id']}", headers=alice))["status"] == "cancelled"
    assert http.delete(f"/api/v1/jobs/{second['id']}", headers=alice).status_code == 409

    geo = ok(http.post("/api/v1/jobs", json={"type": "geocode", "priority": 10, "maxAttempts": 3,
                                             "totalItems": 2}, headers=alice), 201)
    claimed = ok(http.post("/api/v1/jobs/claim", json={"types": ["geocode"], "limit": 1,
                                                       "leaseSeconds": 30, "waitSeconds": 10},
                           headers=worker))["items"]
    assert [(j["id"], j["attempt"], j["worker"]) for j in claimed] == [
        (geo["id"], 1, "worker@example.com")]
    beat = ok(http.post(f"/api/v1/jobs/{geo['id']}/heartbeat", json={"attempt": 1},
                        headers=worker))
    assert (beat["status"], beat["attempt"], beat["cancelRequested"]) == ("processing", 1, False)
    complete = {"attempt": 1, "result": {"points": 2}}
    keyed = {**worker, "Idempotency-Key": "geo-done-1"}
    done = http.post(f"/api/v1/jobs/{geo['id']}/complete", json=complete, headers=keyed)
    again = http.post(f"/api/v1/jobs/{geo['id']}/complete", json=complete, headers=keyed)
    assert ok(done)["status"] == "completed"
    assert again.content == done.content and again.headers["idempotent-replayed"] == "true"
    read = ok(http.get(f"/api/v1/jobs/{geo['id']}", headers=alice))
    assert [(a["attempt"], a["outcome"]) for a in read["attempts"]] == [(1, "completed")]
    assert http.post(f"/api/v1/jobs/{geo['id']}/retry", json={"maxAttempts": 2},
                     headers=alice).status_code == 409
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in server.output()


@on_backends("sqlite", "postgresql")
def test_the_original_apis_checks(http: httpx.Client) -> None:
    admin = bearer(ok(http.post("/api/v1/auth/setup",
                                json={"email": "admin@example.com", "password": PASSWORD}),
                      201)["accessToken"])
    problem_type = "application/problem+json"

    for headers in ({}, bearer("not.a.token")):
        rejected = http.get("/api/v1/jobs", headers=headers)
        assert rejected.status_code == 401 and rejected.headers["content-type"] == problem_type
    assert http.get(f"/api/v1/jobs/{'0' * 8}-0000-4000-8000-{'0' * 12}", headers=admin
                    ).status_code == 404
    assert http.get("/api/v1/jobs/not-an-id", headers=admin).status_code == 404
    assert http.post("/api/v1/jobs", json={"totalItems": 3}, headers=admin).status_code == 422
    assert http.post("/api/v1/jobs", json={"type": "x", "extra": 1}, headers=admin
                     ).status_code == 422

    kinds = ["import", "export", "import", "geocode", "import"]
    ids = [ok(http.post("/api/v1/jobs", json={"type": kind}, headers=admin), 201)["id"]
           for kind in kinds]
    ok(http.post(f"/api/v1/jobs/{ids[0]}/start", headers=admin))
    assert http.delete(f"/api/v1/jobs/{ids[0]}", headers=admin).status_code == 409
    assert ok(http.get(f"/api/v1/jobs/{ids[0]}/progress"))["status"] == "processing"

    imports = ok(http.get("/api/v1/jobs", params={"type": "import"}, headers=admin))
    assert [item["id"] for item in imports["items"]] == [ids[4], ids[2], ids[0]]
    pending = ok(http.get("/api/v1/jobs", params={"status": "pending"}, headers=admin))
    assert len(pending["items"]) == 4
    page = ok(http.get("/api/v1/jobs", params={"limit": 2, "offset": 2}, headers=admin))
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]]
    assert http.get("/api/v1/jobs", params={"limit": 101}, headers=admin).status_code == 422
