"""Admins register, list and change users; emails are unique once normalised."""

from __future__ import annotations

from tests.api.client import AppClient
from tests.api.conftest import PASSWORD, People, assert_problem
from tests.conftest import MEMORY_ONLY

USERS = "/api/v1/users"


def test_admins_register_and_list_users(client: AppClient, people: People) -> None:
    created = client.post(
        USERS, json={"email": "Grace@Example.com", "password": PASSWORD, "role": "worker"},
        headers=people.admin.headers,
    )

    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "grace@example.com" and user["role"] == "worker"
    assert set(user) == {"id", "email", "role", "disabled", "createdAt"}
    assert created.headers["location"] == f"{USERS}/{user['id']}"
    assert client.get(f"{USERS}/{user['id']}", headers=people.admin.headers).json() == user
    listed = client.get(USERS, params={"limit": 2, "offset": 4}, headers=people.admin.headers)
    assert listed.json() == {"items": [user], "limit": 2, "offset": 4, "total": 5}
    emails = [u["email"] for u in client.get(USERS, headers=people.admin.headers).json()["items"]]
    assert emails == [
        "admin@example.com", "member@example.com", "other@example.com", "worker@example.com",
        "grace@example.com",
    ]
    token = client.post("/api/v1/auth/token", data={"username": "grace@example.com",
                                                    "password": PASSWORD})
    assert token.status_code == 200


@MEMORY_ONLY
def test_an_email_is_registered_once(client: AppClient, people: People) -> None:
    response = client.post(
        USERS, json={"email": "MEMBER@example.COM", "password": PASSWORD, "role": "admin"},
        headers=people.admin.headers,
    )

    assert "already registered" in assert_problem(response, 409)["detail"]


@MEMORY_ONLY
def test_invalid_users_are_422_and_do_not_echo_the_password(
    client: AppClient, people: People
) -> None:
    for body in (
        {"email": "no-at-sign", "password": PASSWORD, "role": "member"},
        {"email": "a@example.com", "password": "s3cr3t!", "role": "member"},
        {"email": "a@example.com", "password": PASSWORD, "role": "root"},
        {"email": "a@example.com", "password": PASSWORD, "role": "member", "extra": 1},
    ):
        response = client.post(USERS, json=body, headers=people.admin.headers)
        problem = assert_problem(response, 422)
        assert problem["errors"], problem
        assert body["password"] not in response.text


def test_admins_change_roles_passwords_and_disable_users(
    client: AppClient, people: People
) -> None:
    url = f"{USERS}/{people.other.id}"
    headers = people.admin.headers

    assert client.patch(url, json={"role": "worker"}, headers=headers).json()["role"] == "worker"
    changed = client.patch(url, json={"password": "a new password"}, headers=headers)
    assert changed.status_code == 200
    login = {"username": people.other.email, "password": "a new password"}
    assert client.post("/api/v1/auth/token", data=login).status_code == 200
    assert client.patch(url, json={"disabled": True}, headers=headers).json()["disabled"] is True
    assert_problem(client.post("/api/v1/auth/token", data=login), 401)
    assert client.patch(url, json={"disabled": False}, headers=headers).json()["disabled"] is False
    assert client.post("/api/v1/auth/token", data=login).status_code == 200
    assert_problem(client.patch(url, json={}, headers=headers), 422)


@MEMORY_ONLY
def test_admins_cannot_lock_themselves_out(client: AppClient, people: People) -> None:
    url = f"{USERS}/{people.admin.id}"

    assert_problem(client.patch(url, json={"disabled": True}, headers=people.admin.headers), 409)
    assert_problem(client.patch(url, json={"role": "member"}, headers=people.admin.headers), 409)
    assert client.get("/api/v1/auth/me", headers=people.admin.headers).json()["role"] == "admin"


@MEMORY_ONLY
def test_unknown_users_are_404(client: AppClient, people: People) -> None:
    url = f"{USERS}/{people.member.id.replace(people.member.id[:8], '00000000')}"

    assert_problem(client.get(url, headers=people.admin.headers), 404)
    assert_problem(client.patch(url, json={"role": "member"}, headers=people.admin.headers), 404)


@MEMORY_ONLY
def test_a_page_larger_than_the_setting_is_422(client: AppClient, people: People) -> None:
    assert_problem(client.get(USERS, params={"limit": 101}, headers=people.admin.headers), 422)


def test_one_patch_makes_all_its_changes_in_one_save(client: AppClient, people: People) -> None:
    url = f"{USERS}/{people.other.id}"
    body = {"role": "worker", "disabled": True, "password": "a new password"}

    changed = client.patch(url, json=body, headers=people.admin.headers)

    assert changed.status_code == 200, changed.text
    assert (changed.json()["role"], changed.json()["disabled"]) == ("worker", True)
    history = client.get(f"{url}/history", headers=people.admin.headers).json()
    assert [e["type"] for e in history["events"]] == [
        "Registered", "RoleChanged", "Disabled", "PasswordChanged",
    ]
    assert {e["actor"] for e in history["events"][1:]} == {people.admin.id}


@MEMORY_ONLY
def test_a_refused_patch_changes_nothing(client: AppClient, people: People) -> None:
    url = f"{USERS}/{people.admin.id}"
    body = {"password": "a new password", "disabled": True}

    assert_problem(client.patch(url, json=body, headers=people.admin.headers), 409)

    history = client.get(f"{url}/history", headers=people.admin.headers).json()
    assert [e["type"] for e in history["events"]] == ["Registered"]
    login = {"username": people.admin.email, "password": PASSWORD}
    assert client.post("/api/v1/auth/token", data=login).status_code == 200
