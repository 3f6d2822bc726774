"""Jobs over HTTP: the lifecycle, ETags and If-Match, idempotent creates, cancel, time travel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.api.client import AppClient
from tests.api.conftest import People, assert_problem, create_job
from tests.conftest import MEMORY_ONLY

JOBS = "/api/v1/jobs"
DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]


def test_a_job_runs_its_whole_life_over_http(client: AppClient, people: People) -> None:
    worker = people.worker.headers
    created = client.post(
        JOBS, json={"type": "import", "data": {"file": "a.csv"}, "totalItems": 10},
        headers=people.member.headers,
    )
    assert created.status_code == 201, created.text
    job = created.json()
    url = f"{JOBS}/{job['id']}"
    assert created.headers["location"] == url and created.headers["etag"] == '"1"'
    assert job["status"] == "pending" and job["createdBy"] == people.member.id
    assert job["createdAt"].endswith("Z")
    assert len(job["createdAt"]) == len("2024-01-01T00:00:00.000000Z")

    steps: list[tuple[str, dict[str, Any] | None, str, int]] = [
        ("start", None, "processing", 0),
        ("progress", {"processedItems": 4}, "processing", 40),
        ("errors", {"message": "row 5 broken", "item": "5", "details": {"line": 5}},
         "processing", 40),
        ("progress", {"processedItems": 10}, "processing", 99),
        ("complete", {"result": {"rows": 9}}, "completed", 100),
    ]
    for version, (command, body, status, progress) in enumerate(steps, start=2):
        response = client.post(f"{url}/{command}", json=body, headers=worker)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{version}"'
        assert (response.json()["status"], response.json()["progress"]) == (status, progress)

    final = client.get(url, headers=people.member.headers)
    assert final.headers["etag"] == '"6"'
    body = final.json()
    assert body["result"] == {"rows": 9} and body["errorCount"] == 1
    assert body["errorLog"][0]["details"] == {"line": 5} and body["errorLog"][0]["item"] == "5"
    assert body["startedAt"] and body["completedAt"] and body["updatedAt"] == body["completedAt"]
    assert client.get(f"{url}/progress").json() == {
        "id": job["id"], "status": "completed", "totalItems": 10, "processedItems": 10,
        "progress": 100,
    }
    history = client.get(f"{url}/history", headers=people.member.headers).json()
    assert [e["type"] for e in history["events"]] == [
        "Created", "Started", "ProgressUpdated", "ErrorLogged", "ProgressUpdated", "Completed",
    ]
    assert [e["actor"] for e in history["events"]] == [people.member.id] + [people.worker.id] * 5
    assert history["events"][0]["data"] == {"type": "import", "data": {"file": "a.csv"},
                                            "totalItems": 10, "priority": 0,
                                            "runAt": job["runAt"], "maxAttempts": 3}
    assert history["events"][3]["data"] == {"message": "row 5 broken", "item": "5",
                                            "details": {"line": 5}}


def test_the_past_state_of_a_job(client: AppClient, people: People) -> None:
    job = create_job(client, people.member, totalItems=4)
    url = f"{JOBS}/{job['id']}"
    client.post(f"{url}/start", headers=people.worker.headers)
    client.post(f"{url}/progress", json={"processedItems": 2}, headers=people.worker.headers)
    events = client.get(f"{url}/history", headers=people.admin.headers).json()["events"]
    headers = people.member.headers

    at_two = client.get(url, params={"asOfVersion": 2}, headers=headers)
    assert at_two.json()["status"] == "processing" and at_two.json()["processedItems"] == 0
    assert at_two.headers["etag"] == '"2"'
    at_time = client.get(url, params={"asOf": events[0]["at"]}, headers=headers).json()
    assert at_time["status"] == "pending" and at_time["version"] == 1
    latest = client.get(url, params={"asOf": events[2]["at"]}, headers=headers).json()
    assert latest["version"] == 3
    before = datetime.fromisoformat(events[0]["at"]) - timedelta(microseconds=1)
    assert_problem(client.get(url, params={"asOf": before.isoformat()}, headers=headers), 404)
    for params in ({"asOfVersion": 0}, {"asOf": "2024-01-01T00:00:00"}, {"asOf": "yesterday"}):
        assert_problem(client.get(url, params=params, headers=headers), 422)
    assert "no version 4" in assert_problem(
        client.get(url, params={"asOfVersion": 4}, headers=headers), 404
    )["detail"]
    both = client.get(url, params={"asOfVersion": 3, "asOf": events[0]["at"]}, headers=headers)
    assert both.json()["version"] == 1


def test_if_match_makes_commands_conditional(client: AppClient, people: People) -> None:
    url = f"{JOBS}/{create_job(client, people.member)['id']}"
    worker = people.worker.headers

    stale = client.post(f"{url}/start", headers={**worker, "If-Match": '"7"'})
    assert "version 1, not 7" in assert_problem(stale, 412)["detail"]
    for names_no_version in ("1", 'W/"1"', "nonsense"):
        unquoted = client.post(f"{url}/start", headers={**worker, "If-Match": names_no_version})
        assert "which the condition does not name" in assert_problem(unquoted, 412)["detail"]
    listed = client.post(f"{url}/progress", json={"processedItems": 1},
                         headers={**worker, "If-Match": '"7", "8"'})
    assert "not any of 7, 8" in assert_problem(listed, 412)["detail"]
    fresh = client.post(f"{url}/start", headers={**worker, "If-Match": '"9", "1"'})
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'
    anything = client.post(f"{url}/fail", json={"reason": "x"}, headers={**worker, "If-Match": "*"})
    assert anything.status_code == 200


def test_an_idempotency_key_makes_a_create_safe_to_retry(client: AppClient, people: People) -> None:
    body = {"type": "export", "data": {"to": "s3"}}
    headers = {**people.member.headers, "Idempotency-Key": "order-42"}

    first = client.post(JOBS, json=body, headers=headers)
    retry = client.post(JOBS, json=body, headers=headers)

    assert first.status_code == 201 and retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["location"] == first.headers["location"]
    reused = client.post(JOBS, json={**body, "data": {"to": "gcs"}}, headers=headers)
    assert "different payload" in assert_problem(reused, 409)["detail"]
    other_headers = {**people.other.headers, "Idempotency-Key": "order-42"}
    others = client.post(JOBS, json=body, headers=other_headers)
    assert others.status_code == 201 and others.json()["id"] != first.json()["id"]


def test_owners_and_admins_cancel_pending_jobs(client: AppClient, people: People) -> None:
    by_post = f"{JOBS}/{create_job(client, people.member)['id']}"
    by_delete = f"{JOBS}/{create_job(client, people.member)['id']}"

    assert_problem(client.post(f"{by_post}/cancel", json={}, headers=people.worker.headers), 403)
    assert_problem(client.post(f"{by_post}/cancel", json={}, headers=people.other.headers), 404)
    cancelled = client.post(f"{by_post}/cancel", json={"reason": "not needed"},
                            headers=people.member.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert_problem(client.post(f"{by_post}/cancel", headers=people.member.headers), 409)
    deleted = client.delete(by_delete, headers=people.admin.headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "cancelled"
    assert deleted.headers["etag"] == '"2"'
    history = client.get(f"{by_post}/history", headers=people.member.headers).json()
    assert history["events"][-1]["data"] == {"reason": "not needed"}


def test_only_pending_jobs_can_be_cancelled(client: AppClient, people: People) -> None:
    url = f"{JOBS}/{create_job(client, people.member)['id']}"
    client.post(f"{url}/start", headers=people.worker.headers)

    problem = assert_problem(client.delete(url, headers=people.member.headers), 409)

    assert "it is processing" in problem["detail"]


@MEMORY_ONLY
def test_rule_violations_are_409(client: AppClient, people: People) -> None:
    url = f"{JOBS}/{create_job(client, people.member, totalItems=5)['id']}"
    worker = people.worker.headers

    assert_problem(client.post(f"{url}/complete", headers=worker), 409)
    client.post(f"{url}/start", headers=worker)
    assert_problem(client.post(f"{url}/start", headers=worker), 409)
    assert_problem(client.post(f"{url}/progress", json={"processedItems": 6}, headers=worker), 409)
    client.post(f"{url}/progress", json={"processedItems": 3}, headers=worker)
    assert_problem(client.post(f"{url}/progress", json={"processedItems": 2}, headers=worker), 409)


@MEMORY_ONLY
def test_progress_is_public_by_default(client: AppClient, people: People) -> None:
    job = create_job(client, people.member)

    response = client.get(f"{JOBS}/{job['id']}/progress")

    assert response.status_code == 200
    assert response.json() == {"id": job["id"], "status": "pending", "totalItems": None,
                               "processedItems": 0, "progress": 0}


@MEMORY_ONLY
@pytest.mark.parametrize("missing", ["0d2c4f3e-1111-4a2b-8c3d-123456789abc", "nope", "1234"])
def test_unknown_and_malformed_ids_are_404(client: AppClient, people: People, missing: str) -> None:
    headers = people.admin.headers
    for method, path, body in [
        ("GET", "", None), ("GET", "/history", None), ("GET", "/progress", None),
        ("DELETE", "", None), ("POST", "/start", None), ("POST", "/fail", {"reason": "x"}),
        ("POST", "/progress", {"processedItems": 1}),
    ]:
        response = client.request(method, f"{JOBS}/{missing}{path}", json=body, headers=headers)
        assert_problem(response, 404)


@MEMORY_ONLY
def test_a_user_id_is_not_a_job(client: AppClient, people: People) -> None:
    for path in ("", "/history", "/progress"):
        response = client.get(f"{JOBS}/{people.member.id}{path}", headers=people.admin.headers)
        assert_problem(response, 404)


@MEMORY_ONLY
def test_404_comes_before_422_for_commands(client: AppClient, people: People) -> None:
    response = client.post(f"{JOBS}/nope/progress", json={"processedItems": -1},
                           headers=people.worker.headers)

    assert_problem(response, 404)


@MEMORY_ONLY
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("", {}),
        ("", {"type": ""}),
        ("", {"type": "x" * 101}),
        ("", {"type": "import", "totalItems": 0}),
        ("", {"type": "import", "createdBy": "someone else"}),
        ("", {"type": "import", "data": {"deep": DEEP}}),
        ("", {"type": "import", "data": "x" * 40_000}),
        ("", {"type": "   "}),
        ("/start-later", None),
        ("/progress", {"processedItems": -1}),
        ("/progress", {"processedItems": "many"}),
        ("/progress", {"processedItems": 1, "totalItems": 0}),
        ("/errors", {"message": "x" * 2001}),
        ("/errors", {"message": "boom", "details": "x" * 17_000}),
        ("/fail", {}),
        ("/fail", {"reason": "nul \x00 byte"}),
    ],
)
def test_invalid_input_is_422(
    client: AppClient, people: People, path: str, body: dict[str, Any] | None
) -> None:
    url = JOBS
    if path:
        job = create_job(client, people.member)
        client.post(f"{JOBS}/{job['id']}/start", headers=people.worker.headers)
        url = f"{JOBS}/{job['id']}{path}"

    response = client.post(url, json=body, headers=people.admin.headers)

    if path == "/start-later":
        assert_problem(response, 404)
    else:
        assert assert_problem(response, 422)["errors"]


@MEMORY_ONLY
def test_bodies_over_64_kib_are_413(client: AppClient, people: People) -> None:
    big = b'{"type": "import", "data": "' + b"x" * 70_000 + b'"}'
    headers = {**people.member.headers, "Content-Type": "application/json"}

    assert_problem(client.post(JOBS, content=big, headers=headers), 413)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    assert_problem(client.post(JOBS, content=chunks(), headers=headers), 413)
    padded = b'{"type": "import",' + b" " * 65_000 + b'"data": 1}'
    assert client.post(JOBS, content=padded, headers=headers).status_code == 201


@MEMORY_ONLY
def test_members_see_only_their_own_jobs(client: AppClient, people: People) -> None:
    url = f"{JOBS}/{create_job(client, people.member)['id']}"

    for path in ("", "/history"):
        assert_problem(client.get(url + path, headers=people.other.headers), 404)
        assert client.get(url + path, headers=people.worker.headers).status_code == 200


@MEMORY_ONLY
def test_identity_and_role_are_checked_before_an_unparsable_body(
    client: AppClient, people: People
) -> None:
    url = f"{JOBS}/{create_job(client, people.member)['id']}/progress"
    json = {"Content-Type": "application/json"}
    for body in (b"{not json", b"\xff\xfe"):
        assert_problem(client.post(JOBS, content=body, headers=json), 401)
        member, worker = people.member.headers, people.worker.headers
        assert_problem(client.post(url, content=body, headers={**json, **member}), 403)
        assert_problem(client.post(url, content=body, headers={**json, **worker}), 422)
