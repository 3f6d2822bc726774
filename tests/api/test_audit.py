"""Audit over HTTP: a job's past states, its history page by page, actors, and users' histories.

Every test runs on memory, SQLite and PostgreSQL (the ``backend`` fixture behind ``client``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.user import Role
from tests.api.client import AppClient
from tests.api.conftest import People, Person, assert_problem, create_job

JOBS = "/api/v1/jobs"
USERS = "/api/v1/users"

Step = tuple[str, str, dict[str, Any] | None]

#: (route, who, body): ``who`` is a worker, an admin or the job's owner (a member).
steps: st.SearchStrategy[Step] = st.one_of(
    st.tuples(st.just("start"), st.sampled_from(["worker", "admin"]), st.none()),
    st.tuples(
        st.just("progress"), st.sampled_from(["worker", "admin"]),
        st.fixed_dictionaries({"processedItems": st.integers(0, 12)}),
    ),
    st.tuples(
        st.just("errors"), st.just("worker"),
        st.fixed_dictionaries({"message": st.sampled_from(["disk", "row 5"]),
                               "details": st.none() | st.integers()}),
    ),
    st.tuples(st.just("complete"), st.just("worker"), st.just({"result": {"rows": 10}})),
    st.tuples(st.just("fail"), st.just("admin"), st.just({"reason": "broken"})),
    st.tuples(st.just("cancel"), st.just("owner"), st.just({"reason": "not needed"})),
)


def _caller(people: People, who: str) -> Person:
    return {"worker": people.worker, "admin": people.admin, "owner": people.member}[who]


def _whole_history(client: AppClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(f"{url}/history", params={"limit": 1000}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["nextFromVersion"] is None
    events: list[dict[str, Any]] = response.json()["events"]
    return events


@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(commands=st.lists(steps, max_size=8))
def test_the_state_after_each_event_is_the_state_as_of_its_version_and_time(
    client: AppClient, people: People, commands: list[Step]
) -> None:
    created = create_job(client, people.member, totalItems=10, data={"file": "a.csv"})
    url = f"{JOBS}/{created['id']}"
    states = {1: created}
    for route, who, body in commands:
        response = client.post(f"{url}/{route}", json=body, headers=_caller(people, who).headers)
        assert response.status_code in (200, 409), response.text
        if response.status_code == 200:
            state = response.json()
            states[state["version"]] = state
    assert sorted(states) == list(range(1, len(states) + 1))

    headers = people.member.headers
    events = _whole_history(client, url, headers)
    assert [e["version"] for e in events] == sorted(states)
    for event in events:
        version = event["version"]
        by_version = client.get(url, params={"asOfVersion": version}, headers=headers)
        assert by_version.status_code == 200 and by_version.json() == states[version]
        assert by_version.headers["etag"] == f'"{version}"'
        by_time = client.get(url, params={"asOf": event["at"]}, headers=headers)
        assert by_time.status_code == 200 and by_time.json() == states[version]


def test_history_pages_concatenate_to_the_whole_history(
    client: AppClient, people: People
) -> None:
    ledger = people.ledger
    job = ledger.create_job(job_type="import", total_items=100, actor=people.member.id).job
    ledger.start_job(job.id, actor=people.worker.id)
    for processed in range(1, 22):
        ledger.update_progress(job.id, processed, actor=people.worker.id)
    url, headers = f"{JOBS}/{job.id}", people.worker.headers
    whole = _whole_history(client, url, headers)
    assert [e["version"] for e in whole] == list(range(1, 24))

    for limit in (1, 2, 5, 7, 22, 23, 24, 100):
        pages, start = [], 1
        while start is not None:
            page = client.get(
                f"{url}/history", params={"fromVersion": start, "limit": limit}, headers=headers
            ).json()
            assert len(page["events"]) <= limit
            pages.append(page["events"])
            start = page["nextFromVersion"]
        assert [e for page in pages for e in page] == whole, limit
        assert all(pages), f"an empty page with limit {limit}"
    middle = client.get(f"{url}/history", params={"fromVersion": 10, "limit": 3}, headers=headers)
    assert [e["version"] for e in middle.json()["events"]] == [10, 11, 12]
    assert middle.json()["nextFromVersion"] == 13
    beyond = client.get(f"{url}/history", params={"fromVersion": 24}, headers=headers).json()
    assert beyond["events"] == [] and beyond["nextFromVersion"] is None


def test_bad_pages_and_bad_instants_are_422_and_states_that_never_were_404(
    client: AppClient, people: People
) -> None:
    job = create_job(client, people.member)
    url, headers = f"{JOBS}/{job['id']}", people.member.headers
    for params, field in (
        ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"),
        ({"fromVersion": 0}, "fromVersion"), ({"fromVersion": "x"}, "fromVersion"),
        ({"fromVersion": 2**60}, "fromVersion"),
    ):
        problem = assert_problem(client.get(f"{url}/history", params=params, headers=headers), 422)
        assert problem["errors"][0]["loc"][-1] == field, problem
        assert problem["errors"][0]["msg"]
    beyond = assert_problem(client.get(url, params={"asOfVersion": 2}, headers=headers), 404)
    assert "no version 2" in beyond["detail"] and "current version is 1" in beyond["detail"]
    for as_of in ("yesterday", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "1700000000",
                  "2026-01-01 00:00:00Z"):
        problem = assert_problem(client.get(url, params={"asOf": as_of}, headers=headers), 422)
        assert problem["errors"][0]["loc"][-1] == "asOf", problem
    before = datetime.fromisoformat(job["createdAt"]) - timedelta(microseconds=1)
    for as_of in (before.isoformat(), "0001-01-01T00:00:00+01:00"):
        gone = assert_problem(client.get(url, params={"asOf": as_of}, headers=headers), 404)
        assert "did not exist" in gone["detail"]
    for as_of in ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00"):
        assert client.get(url, params={"asOf": as_of}, headers=headers).json() == (
            client.get(url, headers=headers).json()
        )


def test_a_version_and_an_instant_together_give_the_earlier_state(
    client: AppClient, people: People
) -> None:
    job = create_job(client, people.member, totalItems=10)
    url, worker = f"{JOBS}/{job['id']}", people.worker.headers
    assert client.post(f"{url}/start", headers=worker).status_code == 200
    started = client.get(url, headers=worker).json()
    for done in (2, 4):
        body = {"processedItems": done}
        assert client.post(f"{url}/progress", json=body, headers=worker).status_code == 200

    def as_of(**params: Any) -> dict[str, Any]:
        response = client.get(url, params=params, headers=worker)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert as_of(asOfVersion=3, asOf=started["updatedAt"])["version"] == 2
    assert as_of(asOfVersion=2, asOf="9999-12-31T23:59:59Z")["version"] == 2
    assert as_of(asOfVersion=4, asOf="9999-12-31T23:59:59Z")["processedItems"] == 4
    missing = client.get(url, params={"asOfVersion": 5, "asOf": started["updatedAt"]},
                         headers=worker)
    assert_problem(missing, 404)


def test_actors_are_the_callers_whatever_the_body_says(client: AppClient, people: People) -> None:
    impostor = {"actor": people.admin.id, "createdBy": people.admin.id}
    job = create_job(client, people.member, data=impostor, totalItems=2)
    url = f"{JOBS}/{job['id']}"
    worker = people.worker.headers
    assert client.post(f"{url}/start", headers=worker).status_code == 200
    errors = {"message": "disk", "details": {"actor": people.admin.id}}
    assert client.post(f"{url}/errors", json=errors, headers=worker).status_code == 200
    refused = client.post(f"{url}/fail", json={"reason": "x", "actor": people.admin.id},
                          headers=worker)
    assert_problem(refused, 422)
    assert client.post(f"{url}/complete", json={"result": impostor}, headers=worker).status_code \
        == 200

    events = _whole_history(client, url, people.admin.headers)
    assert [(e["type"], e["actor"], e["actorEmail"]) for e in events] == [
        ("Created", people.member.id, people.member.email),
        ("Started", people.worker.id, people.worker.email),
        ("ErrorLogged", people.worker.id, people.worker.email),
        ("Completed", people.worker.id, people.worker.email),
    ]
    assert events[0]["data"]["data"] == impostor and events[3]["data"]["result"] == impostor
    assert client.get(url, headers=worker).json()["createdBy"] == people.member.id

    as_worker = _whole_history(client, url, worker)
    assert [e["actorEmail"] for e in as_worker] == [e["actorEmail"] for e in events]
    as_owner = _whole_history(client, url, people.member.headers)
    assert [e["actor"] for e in as_owner] == [e["actor"] for e in events]
    assert [e["actorEmail"] for e in as_owner] == [people.member.email, None, None, None]


def test_actors_that_are_not_users_stay_ids(client: AppClient, people: People) -> None:
    ledger = people.ledger
    job = ledger.create_job(job_type="import", actor="cli:root").job
    ledger.fail_job(job.id, "gone", actor="6e1b1c0e-0000-4000-8000-000000000000")
    events = _whole_history(client, f"{JOBS}/{job.id}", people.admin.headers)
    assert [(e["actor"], e["actorEmail"]) for e in events] == [
        ("cli:root", None), ("6e1b1c0e-0000-4000-8000-000000000000", None),
    ]


def test_a_member_cannot_read_another_members_job_history(
    client: AppClient, people: People
) -> None:
    job = create_job(client, people.member)
    url, other = f"{JOBS}/{job['id']}", people.other.headers
    assert_problem(client.get(f"{url}/history", headers=other), 404)
    assert_problem(client.get(f"{url}/history", params={"limit": 0}, headers=other), 404)
    assert_problem(client.get(url, params={"asOfVersion": 1}, headers=other), 404)
    assert_problem(client.get(url, params={"asOf": job["createdAt"]}, headers=other), 404)
    assert_problem(client.get(f"{JOBS}/6e1b1c0e-0000-4000-8000-000000000000/history",
                              headers=people.admin.headers), 404)
    assert client.get(f"{url}/history", headers=people.member.headers).status_code == 200


def test_users_history_is_for_admins_and_never_shows_secrets(
    client: AppClient, people: People
) -> None:
    admin = people.admin
    url = f"{USERS}/{people.member.id}"
    changes = ({"role": "worker"}, {"password": "another long password"}, {"disabled": True},
               {"disabled": False})
    for change in changes:
        assert client.patch(url, json=change, headers=admin.headers).status_code == 200
    people.ledger.record_failed_login(people.member.user.id)

    response = client.get(f"{url}/history", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["userId"] == people.member.id and body["nextFromVersion"] is None
    assert [(e["version"], e["type"], e["actor"], e["actorEmail"]) for e in body["events"]] == [
        (1, "Registered", admin.id, admin.email),
        (2, "RoleChanged", admin.id, admin.email),
        (3, "PasswordChanged", admin.id, admin.email),
        (4, "Disabled", admin.id, admin.email),
        (5, "Enabled", admin.id, admin.email),
        (6, "LoginFailed", "anonymous", None),
    ]
    assert body["events"][0]["data"] == {"email": people.member.email, "role": "member"}
    assert body["events"][1]["data"] == {"role": "worker"}
    assert body["events"][2]["data"] == {}
    assert "argon2" not in response.text and "assword" not in response.text.replace(
        "PasswordChanged", ""
    )
    page = client.get(f"{url}/history", params={"fromVersion": 2, "limit": 2},
                      headers=admin.headers).json()
    assert [e["version"] for e in page["events"]] == [2, 3] and page["nextFromVersion"] == 4

    for person in (people.worker, people.other):
        assert_problem(client.get(f"{url}/history", headers=person.headers), 403)
    assert_problem(client.get(f"{url}/history"), 401)
    unknown = f"{USERS}/6e1b1c0e-0000-4000-8000-000000000000/history"
    assert_problem(client.get(unknown, headers=admin.headers), 404)
    job = create_job(client, people.worker)
    assert_problem(client.get(f"{USERS}/{job['id']}/history", headers=admin.headers), 404)
    assert_problem(client.get(f"{url}/history", params={"limit": 0}, headers=admin.headers), 422)


def test_a_new_user_shows_its_registration(client: AppClient, people: People) -> None:
    worker = people.make("late@example.com", Role.WORKER)
    body = client.get(f"{USERS}/{worker.id}/history", headers=people.admin.headers).json()
    assert [e["type"] for e in body["events"]] == ["Registered"]
