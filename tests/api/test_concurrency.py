"""Concurrent commands over HTTP: the job's rules decide races, never the race itself.

On SQLite and PostgreSQL the requests are split between two apps on the same store, like two
API processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.app import create_app
from api.passwords import Passwords
from tests.api.client import AppClient
from tests.api.conftest import People, create_job

JOBS = "/api/v1/jobs"


@pytest.fixture
def clients(client: AppClient, passwords: Passwords, store_url: str) -> Iterator[list[AppClient]]:
    """The test's client, plus a second app on the same store when the store is shared."""
    if store_url == "memory://":
        yield [client]
        return
    with AppClient(create_app(client.app.state.settings, passwords)) as second:
        yield [client, second]


def test_fifty_concurrent_starts_one_wins(
    clients: list[AppClient], people: People
) -> None:
    job = create_job(clients[0], people.member)
    url = f"{JOBS}/{job['id']}/start"

    def start(attempt: int) -> int:
        client = clients[attempt % len(clients)]
        return client.post(url, headers=people.worker.headers).status_code

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(start, range(50)))

    assert sorted(statuses) == [200] + [409] * 49
    events = clients[0].get(f"{JOBS}/{job['id']}/history", headers=people.admin.headers).json()
    assert [e["type"] for e in events["events"]] == ["Created", "Started"]


def test_ten_concurrent_error_reports_all_succeed(
    clients: list[AppClient], people: People
) -> None:
    job = create_job(clients[0], people.member)
    url = f"{JOBS}/{job['id']}/errors"

    def report(attempt: int) -> int:
        client = clients[attempt % len(clients)]
        body = {"message": f"error {attempt}"}
        return client.post(url, json=body, headers=people.worker.headers).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(report, range(10)))

    assert statuses == [200] * 10
    final = clients[0].get(f"{JOBS}/{job['id']}", headers=people.admin.headers).json()
    assert final["errorCount"] == 10 and final["version"] == 11
