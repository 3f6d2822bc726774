"""``Idempotency-Key`` on the command routes, over HTTP on every store: a command sent again (its
answer lost in the network) gets the first answer verbatim and records nothing, also from
another server process; the same key on another request is 409."""

from __future__ import annotations

from typing import Any

import httpx

from api.app import create_app
from api.passwords import Passwords
from tests.api.client import AppClient
from tests.api.conftest import People, assert_problem, create_job
from tests.conftest import on_backends

JOBS = "/api/v1/jobs"


def _history_types(client: AppClient, people: People, job_id: str) -> list[str]:
    response = client.get(f"{JOBS}/{job_id}/history", headers=people.admin.headers)
    assert response.status_code == 200, response.text
    return [event["type"] for event in response.json()["events"]]


def _running(client: AppClient, people: People) -> dict[str, Any]:
    job = create_job(client, people.member, totalItems=10)
    started = client.post(
        f"{JOBS}/{job['id']}/start", json={"leaseSeconds": 60}, headers=people.worker.headers
    )
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    return body


def _send(
    client: AppClient, people: People, path: str, body: dict[str, Any], key: str
) -> httpx.Response:
    return client.post(path, json=body, headers={**people.worker.headers, "Idempotency-Key": key})


def test_a_command_sent_twice_with_one_key_records_one_event(
    client: AppClient, people: People
) -> None:
    job = _running(client, people)
    path = f"{JOBS}/{job['id']}/progress"
    first = _send(client, people, path, {"processedItems": 3, "attempt": 1}, "p-1")
    again = _send(client, people, path, {"processedItems": 3, "attempt": 1}, "p-1")
    assert first.status_code == again.status_code == 200, again.text
    assert again.content == first.content
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _history_types(client, people, job["id"]).count("ProgressUpdated") == 1


def test_a_key_reused_for_another_request_is_409_and_records_nothing(
    client: AppClient, people: People
) -> None:
    job = _running(client, people)
    path = f"{JOBS}/{job['id']}/progress"
    assert _send(client, people, path, {"processedItems": 3}, "p-1").status_code == 200
    problem = assert_problem(_send(client, people, path, {"processedItems": 4}, "p-1"), 409)
    assert "another request" in problem["detail"]
    assert _history_types(client, people, job["id"]).count("ProgressUpdated") == 1


def test_a_completion_replayed_after_the_job_ended_is_not_a_conflict(
    client: AppClient, people: People
) -> None:
    job = _running(client, people)
    path = f"{JOBS}/{job['id']}/complete"
    first = _send(client, people, path, {"attempt": 1, "result": {"rows": 3}}, "done")
    again = _send(client, people, path, {"attempt": 1, "result": {"rows": 3}}, "done")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert _send(client, people, path, {"attempt": 1}, "other").status_code == 409


def test_a_repeated_claim_gets_the_same_jobs(client: AppClient, people: People) -> None:
    made = {create_job(client, people.member)["id"] for _ in range(3)}
    body = {"limit": 2, "waitSeconds": 5}
    first = _send(client, people, f"{JOBS}/claim", body, "claim-1")
    again = _send(client, people, f"{JOBS}/claim", body, "claim-1")
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json() and len(first.json()["items"]) == 2
    rest = _send(client, people, f"{JOBS}/claim", {"limit": 5}, "claim-2").json()["items"]
    assert {j["id"] for j in first.json()["items"]} | {j["id"] for j in rest} == made


def test_a_batch_item_with_a_key_is_replayed(client: AppClient, people: People) -> None:
    job = _running(client, people)
    item = {"jobId": job["id"], "op": "progress", "processedItems": 2, "idempotencyKey": "b-1"}
    first = client.post(
        f"{JOBS}/commands", json={"commands": [item]}, headers=people.worker.headers
    )
    again = client.post(
        f"{JOBS}/commands", json={"commands": [item]}, headers=people.worker.headers
    )
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert first.json()["results"][0]["status"] == 200
    assert _history_types(client, people, job["id"]).count("ProgressUpdated") == 1


@on_backends("sqlite", "postgresql")
def test_a_repeat_sent_to_another_server_process_is_replayed(
    client: AppClient, people: People, passwords: Passwords
) -> None:
    job = _running(client, people)
    path = f"{JOBS}/{job['id']}/fail"
    body = {"reason": "disk full", "attempt": 1, "retry": False}
    first = _send(client, people, path, body, "f-1")
    with AppClient(create_app(client.app.state.settings, passwords)) as restarted:
        again = _send(restarted, people, path, body, "f-1")
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _history_types(client, people, job["id"]).count("Failed") == 1
