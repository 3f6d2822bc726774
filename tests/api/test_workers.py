"""Workers over HTTP: claim, heartbeat, fencing, cancel requests, retry, the batch of commands.

Every test runs on memory, SQLite and PostgreSQL (the ``backend`` fixture behind ``client``).
Leases pass under a controlled ``ledger.clock``, with the app's lease sweeper stopped, so each
test decides when a lease expires (``ledger.expire_lease``, the sweeper's own call).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from api.schemas.base import rfc3339
from domain.ledger import JobLedger
from projections.readmodel import ReadModel
from tests.api.client import AppClient
from tests.api.conftest import People, assert_problem, create_job
from tests.conftest import MEMORY_ONLY

JOBS = "/api/v1/jobs"
CLAIM = f"{JOBS}/claim"
BATCH = f"{JOBS}/commands"
#: How long a test waits for something that should take milliseconds.
PATIENCE_SECONDS = 10


class Clock:
    """A clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def ledger(people: People) -> JobLedger:
    return people.ledger


@pytest.fixture
def read_model(client: AppClient) -> ReadModel:
    model: ReadModel = client.app.state.read_model
    return model


@pytest.fixture
def clock(ledger: JobLedger, read_model: ReadModel) -> Clock:
    """The ledger's clock, under the test's control; no sweeper ends leases meanwhile."""
    read_model.sweeper.stop()
    controlled = Clock()
    ledger.clock = controlled
    return controlled


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def claim(client: AppClient, people: People, **body: Any) -> list[dict[str, Any]]:
    answer = ok(client.post(CLAIM, json=body, headers=people.worker.headers))
    items: list[dict[str, Any]] = answer["items"]
    return items


def claimed_one(client: AppClient, people: People, **body: Any) -> dict[str, Any]:
    items = claim(client, people, **body)
    assert len(items) == 1, items
    return items[0]


def expire(ledger: JobLedger, read_model: ReadModel, clock: Clock, job_id: str) -> None:
    """Lets the running attempt's lease pass and ends it, as the sweeper would."""
    job = ledger.get_job(UUID(job_id))
    assert job.lease_expires_at is not None, "the job holds no lease"
    clock.now = job.lease_expires_at + timedelta(seconds=1)
    result = ledger.expire_lease(job.id, job.attempt, job.lease_expires_at)
    assert read_model.wait_for(result.position, PATIENCE_SECONDS), "the view did not catch up"


def test_claims_go_by_priority_then_run_at_and_keep_to_their_types(
    client: AppClient, people: People, clock: Clock
) -> None:
    earlier = (clock.now - timedelta(hours=1)).isoformat()
    later = (clock.now + timedelta(hours=1)).isoformat()
    made = {
        name: create_job(client, people.member, **body)["id"]
        for name, body in [
            ("plain", {}),
            ("earlier", {"runAt": earlier}),
            ("urgent", {"priority": 10}),
            ("export", {"type": "export", "priority": 100}),
            ("future", {"priority": 100, "runAt": later}),
            ("low", {"priority": -5}),
        ]
    }
    names = {job_id: name for name, job_id in made.items()}

    imports = claim(client, people, types=["import"], limit=10, leaseSeconds=60)

    assert [names[job["id"]] for job in imports] == ["urgent", "earlier", "plain", "low"]
    first = imports[0]
    assert (first["status"], first["attempt"], first["worker"]) == (
        "processing",
        1,
        people.worker.email,
    )
    assert first["leaseExpiresAt"] == rfc3339(clock.now + timedelta(seconds=60))
    assert first["attempts"] == [
        {
            "attempt": 1,
            "worker": people.worker.email,
            "claimedAt": first["startedAt"],
            "endedAt": None,
            "outcome": None,
            "error": None,
        },
    ]
    assert [names[job["id"]] for job in claim(client, people, limit=10)] == ["export"]
    assert claim(client, people, limit=10) == [], "the future job is not due yet"
    clock.advance(3600)
    assert [names[job["id"]] for job in claim(client, people, worker="w-7")] == ["future"]
    assert (
        ok(client.get(f"{JOBS}/{made['future']}", headers=people.admin.headers))["worker"] == "w-7"
    )


def test_a_claim_of_nothing_due_is_an_empty_list(client: AppClient, people: People) -> None:
    assert ok(client.post(CLAIM, headers=people.worker.headers)) == {"items": []}
    assert claim(client, people, types=["nothing-of-this-type"], waitSeconds=0) == []


class WaitSpy:
    """The claims' view, telling when a claim starts waiting on it."""

    def __init__(self, view: Any) -> None:
        self._view = view
        self.waiting = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def wait_for(self, *args: Any, **kwargs: Any) -> bool:
        self.waiting.set()
        result: bool = self._view.wait_for(*args, **kwargs)
        return result


def test_a_waiting_claim_answers_when_a_job_is_created(
    client: AppClient, people: People, read_model: ReadModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = WaitSpy(read_model.claims.view)
    monkeypatch.setattr(read_model.claims, "view", spy)
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            client.post(CLAIM, json={"waitSeconds": 30}, headers=people.worker.headers)
        )
    )
    waiting.start()
    assert spy.waiting.wait(PATIENCE_SECONDS), "the claim never waited for a job"

    job = create_job(client, people.member)
    waiting.join(PATIENCE_SECONDS)

    assert not waiting.is_alive(), f"the waiting claim did not answer {PATIENCE_SECONDS} s after"
    assert [item["id"] for item in ok(answers[0])["items"]] == [job["id"]]


def test_a_heartbeat_extends_the_lease_and_tells_of_a_cancel_request(
    client: AppClient, people: People, clock: Clock
) -> None:
    job = create_job(client, people.member)
    claimed_one(client, people, leaseSeconds=30)
    url, worker = f"{JOBS}/{job['id']}", people.worker.headers
    claimed_at = clock.now

    early = ok(client.post(f"{url}/heartbeat", json={"attempt": 1}, headers=worker))
    assert early == {
        "id": job["id"],
        "status": "processing",
        "attempt": 1,
        "leaseExpiresAt": rfc3339(claimed_at + timedelta(seconds=30)),
        "cancelRequested": False,
    }
    clock.advance(20)
    beat = {"attempt": 1, "leaseSeconds": 60}
    later = ok(client.post(f"{url}/heartbeat", json=beat, headers=worker))
    assert later["leaseExpiresAt"] == rfc3339(clock.now + timedelta(seconds=60))
    ok(client.post(f"{url}/cancel", json={"reason": "enough"}, headers=people.member.headers))
    assert ok(client.post(f"{url}/heartbeat", json=beat, headers=worker))["cancelRequested"]
    events = ok(client.get(f"{url}/history", headers=people.admin.headers))["events"]
    assert [e["type"] for e in events] == ["Created", "Started", "LeaseExtended", "CancelRequested"]
    for body in ({}, {"attempt": 0}, {"attempt": 1, "leaseSeconds": 4}, {"attempt": 1, "x": 1}):
        assert_problem(client.post(f"{url}/heartbeat", json=body, headers=worker), 422)
    assert_problem(client.post(f"{url}/heartbeat", json=beat, headers=people.member.headers), 403)


def test_a_stale_attempt_is_fenced_off_after_its_lease_expired(
    client: AppClient, people: People, ledger: JobLedger, read_model: ReadModel, clock: Clock
) -> None:
    job = create_job(client, people.member, totalItems=10)
    claimed_one(client, people, leaseSeconds=5)
    expire(ledger, read_model, clock, job["id"])
    url, worker = f"{JOBS}/{job['id']}", people.worker.headers
    assert ok(client.get(url, headers=worker))["status"] == "retrying"
    clock.advance(3600)
    assert claimed_one(client, people, leaseSeconds=60)["attempt"] == 2

    for command, body in [
        ("heartbeat", {"attempt": 1}),
        ("progress", {"processedItems": 5, "attempt": 1}),
        ("errors", {"message": "late", "attempt": 1}),
        ("complete", {"result": "stale", "attempt": 1}),
        ("fail", {"reason": "stale", "attempt": 1}),
        ("cancel", {"attempt": 1}),
    ]:
        problem = assert_problem(client.post(f"{url}/{command}", json=body, headers=worker), 409)
        assert problem["type"] == "urn:jobledger:problem:lease-lost", command
        assert (problem["jobStatus"], problem["attempt"]) == ("processing", 2), command

    final = ok(client.get(url, headers=worker))
    events = ok(client.get(f"{url}/history", headers=worker))["events"]
    assert [e["type"] for e in events] == ["Created", "Started", "LeaseExpired", "Started"]
    assert [a["outcome"] for a in final["attempts"]] == ["lease-expired", None]
    assert (final["status"], final["processedItems"], final["errorCount"]) == ("processing", 0, 0)


def test_a_cancel_request_is_acknowledged_by_the_workers_fail(
    client: AppClient, people: People
) -> None:
    job = create_job(client, people.member)
    claimed_one(client, people)
    url, worker = f"{JOBS}/{job['id']}", people.worker.headers

    asked = ok(
        client.post(f"{url}/cancel", json={"reason": "wrong file"}, headers=people.member.headers)
    )
    assert (asked["status"], asked["cancelRequested"]) == ("processing", True)
    assert_problem(client.delete(url, headers=people.member.headers), 409)
    stopped = ok(
        client.post(f"{url}/fail", json={"reason": "stopping", "attempt": 1}, headers=worker)
    )

    assert (stopped["status"], stopped["cancelRequested"]) == ("cancelled", True)
    assert stopped["attempts"][-1]["outcome"] == "cancelled"
    listed = ok(client.get(JOBS, params={"status": "cancelled"}, headers=worker))["items"]
    assert [(i["id"], i["cancelRequested"]) for i in listed] == [(job["id"], True)]


def test_a_worker_cancels_only_the_attempt_it_runs(client: AppClient, people: People) -> None:
    job = create_job(client, people.member)
    claimed_one(client, people)
    url, worker = f"{JOBS}/{job['id']}", people.worker.headers

    refused = assert_problem(client.post(f"{url}/cancel", json={}, headers=worker), 403)
    assert "attempt" in refused["detail"]
    assert_problem(client.post(f"{url}/cancel", headers=worker), 403)
    assert_problem(client.post(f"{url}/cancel", json={"attempt": 2}, headers=worker), 409)
    cancelled = ok(
        client.post(f"{url}/cancel", json={"attempt": 1, "reason": "shutting down"}, headers=worker)
    )
    assert cancelled["status"] == "cancelled" and cancelled["attempts"][-1]["outcome"] == (
        "cancelled"
    )


def test_a_fail_retries_while_attempts_are_left_and_retrying_filters(
    client: AppClient, people: People, clock: Clock
) -> None:
    retried = create_job(client, people.member, maxAttempts=2)["id"]
    final = create_job(client, people.member)["id"]
    worker = people.worker.headers
    assert len(claim(client, people, limit=2)) == 2

    again = ok(
        client.post(
            f"{JOBS}/{retried}/fail",
            json={"reason": "flaky", "attempt": 1, "retryInSeconds": 90},
            headers=worker,
        )
    )
    assert again["status"] == "retrying"
    assert again["runAt"] == rfc3339(clock.now + timedelta(seconds=90))
    assert again["attempts"][-1] == {**again["attempts"][-1], "outcome": "failed", "error": "flaky"}
    done = ok(
        client.post(f"{JOBS}/{final}/fail", json={"reason": "bad", "retry": False}, headers=worker)
    )
    assert (done["status"], done["failureReason"]) == ("failed", "bad")

    listed = ok(client.get(JOBS, params={"status": "retrying"}, headers=worker))["items"]
    assert [item["id"] for item in listed] == [retried]
    assert (listed[0]["attempt"], listed[0]["maxAttempts"]) == (1, 2)
    clock.advance(90)
    claimed_one(client, people)
    last = ok(client.post(f"{JOBS}/{retried}/fail", json={"reason": "flaky again"}, headers=worker))
    assert (last["status"], last["attempt"]) == ("failed", 2), "no attempt was left"


def test_the_owner_retries_a_failed_job(client: AppClient, people: People) -> None:
    job = create_job(client, people.member, maxAttempts=1)
    claimed_one(client, people)
    url = f"{JOBS}/{job['id']}"
    ok(client.post(f"{url}/fail", json={"reason": "broken"}, headers=people.worker.headers))

    assert_problem(client.post(f"{url}/retry", headers=people.worker.headers), 403)
    assert_problem(client.post(f"{url}/retry", headers=people.other.headers), 404)
    assert_problem(
        client.post(f"{url}/retry", json={"maxAttempts": 0}, headers=people.member.headers), 422
    )
    retried = ok(
        client.post(f"{url}/retry", json={"maxAttempts": 2}, headers=people.member.headers)
    )

    assert (retried["status"], retried["attempt"], retried["maxAttempts"]) == ("pending", 1, 3)
    assert retried["failureReason"] is None and retried["completedAt"] is None
    assert_problem(client.post(f"{url}/retry", headers=people.member.headers), 409)
    assert claimed_one(client, people)["attempt"] == 2


def test_a_job_is_not_started_before_its_run_at(client: AppClient, people: People) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    job = create_job(client, people.member, runAt=later)
    url = f"{JOBS}/{job['id']}"

    problem = assert_problem(client.post(f"{url}/start", headers=people.worker.headers), 409)

    assert "runAt" in problem["detail"] and job["runAt"] in problem["detail"]
    for body in (
        {"runAt": "2026-01-01T00:00:00"},
        {"runAt": "2026-01-01 00:00:00Z"},
        {"runAt": 1767225600},
        {"priority": "1"},
        {"priority": 1.5},
        {"priority": 101},
        {"priority": -101},
        {"maxAttempts": 0},
        {"maxAttempts": 101},
    ):
        response = client.post(JOBS, json={"type": "import", **body}, headers=people.member.headers)
        assert_problem(response, 422)


def test_start_takes_an_optional_lease_and_worker_label(
    client: AppClient, people: People, clock: Clock
) -> None:
    leased = create_job(client, people.member)["id"]
    plain = create_job(client, people.member)["id"]
    worker = people.worker.headers

    started = ok(
        client.post(
            f"{JOBS}/{leased}/start", json={"leaseSeconds": 45, "worker": "w-1"}, headers=worker
        )
    )
    assert (started["worker"], started["leaseExpiresAt"]) == (
        "w-1",
        rfc3339(clock.now + timedelta(seconds=45)),
    )
    bare = ok(client.post(f"{JOBS}/{plain}/start", headers=worker))
    assert (bare["worker"], bare["leaseExpiresAt"], bare["attempt"]) == (
        people.worker.email,
        None,
        1,
    )


def test_a_batch_runs_its_commands_in_order_each_with_its_own_status(
    client: AppClient, people: People, read_model: ReadModel
) -> None:
    running = create_job(client, people.member, totalItems=10)["id"]
    waiting = create_job(client, people.member)["id"]
    claimed_one(client, people, types=["import"])
    waiting_started = ok(client.get(f"{JOBS}/{waiting}", headers=people.worker.headers))
    assert waiting_started["status"] == "pending", "the claim took the oldest job"
    commands: list[Any] = [
        {"jobId": running, "op": "progress", "attempt": 1, "processedItems": 4},
        {"jobId": running, "op": "progress", "processedItems": -1},
        {"jobId": running, "op": "heartbeat", "attempt": 1},
        {"jobId": waiting, "op": "errors", "message": "disk"},
        {"jobId": waiting, "op": "complete"},
        {"jobId": "nope", "op": "complete"},
        {"jobId": running, "op": "explode"},
        "not a command",
        {"jobId": running, "op": "fail", "attempt": 1, "reason": "broken", "retry": False},
        {"jobId": running, "op": "progress", "attempt": 1, "processedItems": 5},
    ]

    results = ok(client.post(BATCH, json={"commands": commands}, headers=people.worker.headers))[
        "results"
    ]

    assert [(r["jobId"], r["status"]) for r in results] == [
        (running, 200),
        (running, 422),
        (running, 200),
        (waiting, 200),
        (waiting, 409),
        ("nope", 404),
        (running, 422),
        (None, 422),
        (running, 200),
        (running, 409),
    ]
    assert results[0]["job"]["processedItems"] == 4 and "problem" not in results[0]
    assert results[1]["problem"]["errors"][0]["loc"] == ["body", "commands", 1, "processedItems"]
    assert results[2]["job"]["id"] == running and results[3]["job"]["errorCount"] == 1
    assert results[8]["job"]["status"] == "failed"
    assert results[9]["problem"]["type"] == "urn:jobledger:problem:lease-lost"
    assert (results[9]["problem"]["jobStatus"], results[9]["problem"]["attempt"]) == ("failed", 1)
    for result in results[1:]:
        if result["status"] != 200:
            assert "job" not in result and result["problem"]["status"] == result["status"]
    listed = ok(client.get(JOBS, params={"status": "failed"}, headers=people.worker.headers))
    assert [item["id"] for item in listed["items"]] == [running], "read your writes"


def test_a_batch_on_many_jobs_keeps_each_jobs_commands_in_order(
    client: AppClient, people: People
) -> None:
    job_ids = [create_job(client, people.member, totalItems=3)["id"] for _ in range(12)]
    claimed = claim(client, people, limit=12)
    assert sorted(job["id"] for job in claimed) == sorted(job_ids)
    commands: list[Any] = [
        {"jobId": job_id, "op": "progress", "attempt": 1, "processedItems": step}
        for step in (1, 2, 3)
        for job_id in job_ids
    ] + [{"jobId": job_id, "op": "complete", "attempt": 1, "result": job_id} for job_id in job_ids]

    results = ok(client.post(BATCH, json={"commands": commands}, headers=people.worker.headers))[
        "results"
    ]

    assert [(r["jobId"], r["status"]) for r in results] == [(c["jobId"], 200) for c in commands]
    assert [r["job"]["processedItems"] for r in results[:36]] == [1] * 12 + [2] * 12 + [3] * 12
    for job_id in job_ids:
        history = ok(client.get(f"{JOBS}/{job_id}/history", headers=people.worker.headers))
        steps = [e["data"].get("processedItems") for e in history["events"][2:]]
        assert steps == [1, 2, 3, None], f"{job_id}: {steps}"


@MEMORY_ONLY
@pytest.mark.parametrize(
    "body",
    [{}, {"commands": []}, {"commands": {}}, {"commands": [{}] * 101}, {"commands": [], "x": 1}],
)
def test_a_malformed_batch_is_refused_whole(
    client: AppClient, people: People, body: dict[str, Any]
) -> None:
    assert_problem(client.post(BATCH, json=body, headers=people.worker.headers), 422)


@MEMORY_ONLY
def test_members_may_not_claim_or_send_batches(client: AppClient, people: People) -> None:
    member = people.member.headers
    assert_problem(client.post(CLAIM, headers=member), 403)
    assert_problem(client.post(BATCH, json={"commands": [{}]}, headers=member), 403)


@MEMORY_ONLY
@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 101},
        {"leaseSeconds": 4.9},
        {"leaseSeconds": 3601},
        {"waitSeconds": -1},
        {"waitSeconds": 31},
        {"types": []},
        {"types": ["a"] * 21},
        {"types": [""]},
        {"worker": ""},
        {"worker": "w" * 201},
        {"lease": 30},
    ],
)
def test_claim_bounds_are_422(client: AppClient, people: People, body: dict[str, Any]) -> None:
    assert_problem(client.post(CLAIM, json=body, headers=people.worker.headers), 422)


def _property(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """A property's schema with its nullable alternative folded in (bounds and description)."""
    prop: dict[str, Any] = dict(schema["properties"][name])
    for option in prop.pop("anyOf", []):
        if option.get("type") != "null":
            prop.update(option)
    return prop


@MEMORY_ONLY
def test_the_openapi_document_shows_the_worker_routes_and_their_bounds(
    client: AppClient,
) -> None:
    document = client.get("/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    for path in (CLAIM, BATCH, f"{JOBS}/{{job_id}}/heartbeat", f"{JOBS}/{{job_id}}/retry"):
        assert paths[path]["post"]["description"], path
        assert {"401", "403", "422"} <= set(paths[path]["post"]["responses"]), path
    bounds = {
        ("ClaimRequest", "limit"): (1, 100, 1),
        ("ClaimRequest", "leaseSeconds"): (5, 3600, 30),
        ("ClaimRequest", "waitSeconds"): (0, 30, 0),
        ("JobCreate", "priority"): (-100, 100, 0),
        ("JobCreate", "maxAttempts"): (1, 100, None),
        ("Failure", "retryInSeconds"): (0, 86400, None),
        ("HeartbeatRequest", "leaseSeconds"): (5, 3600, None),
        ("ProgressUpdate", "leaseSeconds"): (5, 3600, None),
        ("StartRequest", "leaseSeconds"): (5, 3600, None),
        ("Retry", "maxAttempts"): (1, 100, None),
    }
    for (model, name), (low, high, default) in bounds.items():
        prop = _property(schemas[model], name)
        assert (prop["minimum"], prop["maximum"], prop.get("default")) == (low, high, default)
    for model in ("ProgressUpdate", "ErrorReport", "Completion", "Failure", "Cancellation"):
        assert _property(schemas[model], "attempt")["minimum"] == 1, model
    types = _property(schemas["ClaimRequest"], "types")
    assert (types["minItems"], types["maxItems"], types["items"]["maxLength"]) == (1, 20, 100)
    assert _property(schemas["ClaimRequest"], "worker")["maxLength"] == 200
    assert _property(schemas["JobCreate"], "runAt")["format"] == "date-time"
    assert _property(schemas["Failure"], "retry")["default"] is True
    assert schemas["HeartbeatRequest"]["required"] == ["attempt"]
    commands = schemas["CommandBatch"]["properties"]["commands"]
    assert (commands["minItems"], commands["maxItems"]) == (1, 100)
    commands_or_anything = commands["items"]["anyOf"]
    assert sorted(commands_or_anything[0]["discriminator"]["mapping"]) == [
        "complete",
        "errors",
        "fail",
        "heartbeat",
        "progress",
    ]
    for model in (
        "ClaimRequest",
        "HeartbeatRequest",
        "StartRequest",
        "Retry",
        "JobCreate",
        "ProgressUpdate",
        "ErrorReport",
        "Completion",
        "Failure",
        "Cancellation",
        "CommandBatch",
        "ProgressCommand",
        "FailCommand",
    ):
        undocumented = [
            name
            for name in schemas[model]["properties"]
            if not _property(schemas[model], name).get("description") and name != "op"
        ]
        assert undocumented == [], f"{model} does not document {undocumented}"
    job = schemas["JobOut"]["properties"]
    assert {
        "priority",
        "runAt",
        "attempt",
        "maxAttempts",
        "leaseExpiresAt",
        "worker",
        "cancelRequested",
        "attempts",
    } <= set(job)
