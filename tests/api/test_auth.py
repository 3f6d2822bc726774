"""Setup once, logging in (OAuth2 password form), throttling, rehashing, and token checks."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest
from argon2 import PasswordHasher

from api.app import create_app
from api.passwords import Passwords
from api.tokens import REQUIRED_CLAIMS
from domain.user import MAX_FAILED_LOGINS, Role, User
from tests.api.client import AppClient
from tests.api.conftest import PASSWORD, SECRET, People, assert_problem, make_settings
from tests.api.forge import bad_tokens, claims_of, signed
from tests.conftest import MEMORY_ONLY

SETUP = "/api/v1/auth/setup"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"


def login(client: AppClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(TOKEN, data={"username": email, "password": password})


def test_setup_creates_the_first_admin_once(client: AppClient) -> None:
    created = client.post(SETUP, json={"email": "Ada@Example.com", "password": PASSWORD})

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["role"] == "admin"
    me = client.get(ME, headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert me.json() == body["user"]
    again = client.post(SETUP, json={"email": "eve@example.com", "password": PASSWORD})
    assert_problem(again, 409)


@MEMORY_ONLY
def test_setup_is_refused_once_any_user_exists(client: AppClient, password_hash: str) -> None:
    client.app.state.ledger.register_user(
        email="cli@example.com", role=Role.WORKER, password_hash=password_hash, actor="cli"
    )

    assert_problem(client.post(SETUP, json={"email": "a@example.com", "password": PASSWORD}), 409)


def test_concurrent_setups_make_exactly_one_admin(
    store_url: str, tmp_path: Path, passwords: Passwords
) -> None:
    settings = make_settings(store_url, tmp_path)
    with AppClient(create_app(settings, passwords)) as one:
        clients = [one]
        if store_url != "memory://":
            clients.append(AppClient(create_app(settings, passwords)).__enter__())
        try:
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(
                    lambda i: clients[i % len(clients)].post(
                        SETUP, json={"email": f"admin{i}@example.com", "password": PASSWORD}
                    ).status_code,
                    range(8),
                ))
        finally:
            for other in clients[1:]:
                other.__exit__(None, None, None)
        users, total = one.app.state.ledger.list_users(limit=10, offset=0)
    assert sorted(statuses) == [201] + [409] * 7
    assert total == 1 and users[0].role is Role.ADMIN


def test_login_returns_a_bearer_token(client: AppClient, people: People) -> None:
    response = client.post(TOKEN, data={"username": "MEMBER@example.com", "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    claims = jwt.decode(
        body["access_token"], SECRET, algorithms=["HS256"], audience="jobledger-api"
    )
    assert set(REQUIRED_CLAIMS) <= set(claims)
    assert claims["sub"] == people.member.id and claims["role"] == "member"
    me = client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["email"] == "member@example.com"


@MEMORY_ONLY
@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("member@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not an email", "x"),
    ],
)
def test_bad_credentials_are_401(
    client: AppClient, people: People, username: str, password: str
) -> None:
    response = client.post(TOKEN, data={"username": username, "password": password})

    problem = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert problem["detail"] == "Incorrect email or password."


def test_five_failures_lock_the_account_across_processes(
    client: AppClient, people: People, passwords: Passwords, store_url: str
) -> None:
    second = client
    if store_url != "memory://":
        second = AppClient(create_app(client.app.state.settings, passwords)).__enter__()
    try:
        clients = [client, second]
        for attempt in range(MAX_FAILED_LOGINS):
            failed = clients[attempt % 2].post(
                TOKEN, data={"username": people.worker.email, "password": "wrong password"}
            )
            assert_problem(failed, 401)
        for each in clients:
            locked = each.post(TOKEN, data={"username": people.worker.email, "password": PASSWORD})
            assert_problem(locked, 429)
            assert 890 <= int(locked.headers["retry-after"]) <= 900
        assert client.post(TOKEN, data={"username": people.member.email, "password": PASSWORD}
                           ).status_code == 200
    finally:
        if second is not client:
            second.__exit__(None, None, None)
    worker = people.ledger.get_user(people.worker.user.id)
    assert len(worker.failed_logins) == MAX_FAILED_LOGINS


def test_concurrent_failures_record_at_most_five(client: AppClient, people: People) -> None:
    def attempt(_: int) -> int:
        return client.post(
            TOKEN, data={"username": people.worker.email, "password": "wrong password"}
        ).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(attempt, range(12)))

    assert statuses.count(401) <= MAX_FAILED_LOGINS and set(statuses) <= {401, 429}
    events = list(people.ledger.events.get(people.worker.user.id))
    assert sum(isinstance(e, User.LoginFailed) for e in events) == MAX_FAILED_LOGINS


@MEMORY_ONLY
def test_login_rehashes_a_password_hashed_with_older_parameters(
    client: AppClient, people: People
) -> None:
    old_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    user = people.ledger.register_user(
        email="old@example.com", role=Role.MEMBER, password_hash=old_hash, actor="test"
    )

    assert login(client, "old@example.com").status_code == 200

    rehashed = people.ledger.get_user(user.id)
    assert rehashed.password_hash != old_hash
    assert not client.app.state.passwords.needs_rehash(rehashed.password_hash)
    assert isinstance(list(people.ledger.events.get(user.id))[-1], User.PasswordChanged)
    assert login(client, "old@example.com").status_code == 200


def test_a_disabled_users_tokens_are_refused_at_once(
    client: AppClient, people: People, passwords: Passwords, store_url: str
) -> None:
    assert client.get(ME, headers=people.member.headers).status_code == 200
    other = client
    if store_url != "memory://":
        other = AppClient(create_app(client.app.state.settings, passwords)).__enter__()
    try:
        disabled = other.patch(
            f"/api/v1/users/{people.member.id}", json={"disabled": True},
            headers=people.admin.headers,
        )
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    finally:
        if other is not client:
            other.__exit__(None, None, None)

    problem = assert_problem(client.get(ME, headers=people.member.headers), 401)
    assert "disabled" in problem["detail"]
    assert_problem(login(client, people.member.email), 401)


@MEMORY_ONLY
def test_a_role_change_retires_the_users_tokens(client: AppClient, people: People) -> None:
    changed = client.patch(
        f"/api/v1/users/{people.worker.id}", json={"role": "member"}, headers=people.admin.headers
    )
    assert changed.status_code == 200

    assert_problem(client.get(ME, headers=people.worker.headers), 401)
    fresh = people.person(people.ledger.get_user(people.worker.user.id))
    assert client.get(ME, headers=fresh.headers).json()["role"] == "member"


@MEMORY_ONLY
@pytest.mark.parametrize("kind", ["expired", "bad signature", "alg none", "wrong aud", "wrong iss"])
def test_invalid_tokens_are_401(client: AppClient, people: People, kind: str) -> None:
    token = bad_tokens(people.member)[kind]

    response = client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@MEMORY_ONLY
@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_a_token_missing_any_required_claim_is_401(
    client: AppClient, people: People, claim: str
) -> None:
    token = signed(claims_of(people.member, **{claim: None}))

    assert_problem(client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)


@MEMORY_ONLY
@pytest.mark.parametrize(
    "overrides",
    [{"sub": "not-a-uuid"}, {"role": "root"}, {"sub": "00000000-0000-0000-0000-000000000000"}],
)
def test_tokens_with_bad_claims_are_401(
    client: AppClient, people: People, overrides: dict[str, str]
) -> None:
    token = signed(claims_of(people.member, **overrides))

    assert_problem(client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)


@MEMORY_ONLY
def test_a_token_within_the_leeway_is_accepted(client: AppClient, people: People) -> None:
    token = signed(claims_of(people.member, exp=int(time.time()) - 3))

    assert client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 200
