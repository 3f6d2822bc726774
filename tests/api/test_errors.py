"""Every error is a problem document: unknown routes and methods, bugs, an unreachable store."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI

from projections.lag import PROBE_TIMEOUT_SECONDS
from stores import Store
from tests.api.client import AppClient
from tests.api.conftest import People, assert_problem, create_job
from tests.conftest import MEMORY_ONLY


def test_health_reports_the_store_and_the_read_model(client: AppClient, people: People) -> None:
    create_job(client, people.member)

    health = client.get("/api/health")

    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["store"] == client.app.state.settings.store.kind
    assert body["projection"]["head"] == client.app.state.ledger.head()
    assert body["projection"]["lag"] == body["projection"]["head"] - body["projection"]["position"]


@MEMORY_ONLY
def test_unknown_routes_and_methods_are_problems(client: AppClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404)
    not_allowed = client.request("PUT", "/api/v1/jobs")
    assert_problem(not_allowed, 405)
    assert "POST" in not_allowed.headers["allow"]


@MEMORY_ONLY
def test_a_bug_is_a_500_with_a_request_id_and_no_internals(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    with AppClient(app) as client, caplog.at_level(logging.ERROR, logger="api"):
        response = client.get("/boom", headers={"X-Request-ID": "req-123"})

    problem = assert_problem(response, 500)
    assert problem["requestId"] == "req-123" == response.headers["x-request-id"]
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "req-123" in caplog.text and "secret internals" in caplog.text


@MEMORY_ONLY
def test_every_response_carries_a_request_id(client: AppClient) -> None:
    generated = client.get("/api/health").headers["x-request-id"]
    assert len(generated) == 32
    unsafe = client.get("/api/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


@pytest.fixture
def unreachable(store_url: str) -> Iterator[object]:
    """Cuts the database off (no new connections, existing ones terminated); restores it after."""
    name = Store.from_url(store_url).dbname
    admin_url = store_url.rsplit("/", 1)[0] + "/postgres"

    def allow(allowed: bool) -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
            if not allowed:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,),
                )

    yield allow
    allow(True)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_unreachable_store_is_503_with_retry_after(
    client: AppClient, unreachable: object
) -> None:
    assert client.get("/api/health").status_code == 200

    unreachable(False)  # type: ignore[operator]

    for _ in range(2):
        started = time.monotonic()
        health = client.get("/api/health")
        assert_problem(health, 503)
        assert health.headers["retry-after"] == "1"
        assert time.monotonic() - started < PROBE_TIMEOUT_SECONDS + 1

    unreachable(True)  # type: ignore[operator]
    deadline = time.monotonic() + 30
    while client.get("/api/health").status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover after the store came back"
        time.sleep(0.5)
