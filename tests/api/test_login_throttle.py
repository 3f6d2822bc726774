"""Login throttling through HTTP: per client address, ``PATCH /auth/me``, ``users unlock``.

The client address is faked inside the ASGI scope only (an ``x-test-client`` header that a test
middleware moves into ``scope["client"]``); nothing touches the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.login import MAX_ADDRESS_FAILED_LOGINS, AddressThrottle
from domain.errors import AddressThrottledError
from domain.ledger import JobLedger
from domain.user import MAX_FAILED_LOGINS
from stores import Store
from tests.api.client import AppClient
from tests.api.conftest import PASSWORD, People, assert_problem
from tests.api.test_cli import run
from tests.conftest import MEMORY_ONLY

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"
ATTACKER, OWNER = "203.0.113.7", "198.51.100.20"
NEW_PASSWORD = "a brand new password"


class FakeClientAddress:
    """Sets the ASGI scope's client from the ``x-test-client`` header, when there is one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-client":
                    scope = {**scope, "client": (value.decode(), 123)}
        await self.app(scope, receive, send)


@pytest.fixture
def client(app: FastAPI) -> Iterator[AppClient]:
    app.add_middleware(FakeClientAddress)
    with AppClient(app) as client:
        yield client


def login(client: AppClient, email: str, password: str, address: str) -> httpx.Response:
    return client.post(TOKEN, data={"username": email, "password": password},
                       headers={"x-test-client": address})


def change(client: AppClient, headers: dict[str, str], current: str, new: str,
           address: str = OWNER) -> httpx.Response:
    return client.patch(ME, json={"currentPassword": current, "newPassword": new},
                        headers={**headers, "x-test-client": address})


def test_a_throttled_address_is_429_while_another_address_logs_in(
    client: AppClient, people: People
) -> None:
    email = people.member.email
    for _ in range(MAX_FAILED_LOGINS):
        assert_problem(login(client, email, "wrong password", ATTACKER), 401)

    refused = login(client, email, PASSWORD, ATTACKER)
    assert_problem(refused, 429)
    assert 890 <= int(refused.headers["retry-after"]) <= 900
    assert login(client, email, PASSWORD, OWNER).status_code == 200
    stored = people.ledger.get_user(people.member.user.id)
    assert {f.address for f in stored.failed_logins} == {ATTACKER}


@MEMORY_ONLY
def test_an_address_failing_across_accounts_is_refused_for_every_account(
    client: AppClient, people: People
) -> None:
    client.app.state.address_throttle = AddressThrottle(limit=3)
    assert_problem(login(client, people.member.email, "wrong password", ATTACKER), 401)
    assert_problem(login(client, people.worker.email, "wrong password", ATTACKER), 401)
    assert_problem(login(client, "nobody@example.com", "wrong password", ATTACKER), 401)

    refused = login(client, people.other.email, PASSWORD, ATTACKER)
    assert "from your address" in assert_problem(refused, 429)["detail"]
    assert int(refused.headers["retry-after"]) > 890
    assert login(client, people.other.email, PASSWORD, OWNER).status_code == 200


def test_the_address_throttle_counts_a_window_and_is_bounded() -> None:
    now = [1000.0]
    throttle = AddressThrottle(max_addresses=3, clock=lambda: now[0])
    for _ in range(MAX_ADDRESS_FAILED_LOGINS - 1):
        throttle.fail(ATTACKER)
    throttle.check(ATTACKER)
    throttle.fail(ATTACKER)
    with pytest.raises(AddressThrottledError) as refused:
        throttle.check(ATTACKER)
    assert refused.value.retry_after == 900
    now[0] += 900
    throttle.check(ATTACKER)
    for number in range(10):
        throttle.fail(f"10.0.0.{number}")
    assert len(throttle) == 3
    throttle.check(ATTACKER)


def test_users_change_their_own_password(client: AppClient, people: People) -> None:
    member = people.member
    changed = change(client, member.headers, PASSWORD, NEW_PASSWORD)

    assert changed.status_code == 200, changed.text
    assert changed.json() == client.get(ME, headers=member.headers).json()
    assert changed.json()["email"] == member.email
    assert_problem(login(client, member.email, PASSWORD, OWNER), 401)
    assert login(client, member.email, NEW_PASSWORD, OWNER).status_code == 200


def test_a_wrong_current_password_is_403_and_counts_as_a_failed_login(
    client: AppClient, people: People
) -> None:
    member = people.member
    for _ in range(MAX_FAILED_LOGINS):
        wrong = change(client, member.headers, "not my password", NEW_PASSWORD, ATTACKER)
        assert assert_problem(wrong, 403)["detail"] == "The current password is incorrect."

    assert_problem(change(client, member.headers, PASSWORD, NEW_PASSWORD, ATTACKER), 429)
    assert_problem(login(client, member.email, PASSWORD, ATTACKER), 429)
    assert login(client, member.email, PASSWORD, OWNER).status_code == 200


@MEMORY_ONLY
@pytest.mark.parametrize(
    "body",
    [
        {"currentPassword": PASSWORD, "newPassword": "short"},
        {"currentPassword": PASSWORD, "newPassword": "x" * 1025},
        {"currentPassword": PASSWORD},
        {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD, "role": "admin"},
        {"currentPassword": 12345678, "newPassword": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ],
)
def test_password_changes_are_validated(
    client: AppClient, people: People, body: dict[str, object]
) -> None:
    assert_problem(client.patch(ME, json=body, headers=people.member.headers), 422)
    assert_problem(client.patch(ME, json=body), 401)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", url)
    monkeypatch.setenv("JOBLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("JOBLEDGER_JWT_SECRET", raising=False)
    return url


def test_users_unlock_clears_the_failed_logins(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "users", "create", "--email", "bot@example.com", "--role", "worker",
               stdin=PASSWORD) == 0
    ledger = JobLedger(env=Store.from_url(env).ledger_env())
    try:
        user = ledger.find_user("bot@example.com")
        for _ in range(MAX_FAILED_LOGINS):
            ledger.record_failed_login(user.id, ATTACKER)
        capsys.readouterr()

        assert run(monkeypatch, "users", "unlock", "--email", "Bot@Example.com") == 0

        out = capsys.readouterr().out
        assert "bot@example.com may log in again (5 failed logins cleared)" in out
        unlocked = ledger.get_user(user.id)
        assert unlocked.failed_logins == []
        unlocked.check_login_allowed(ATTACKER)
    finally:
        ledger.close()


def test_users_unlock_refusals(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "users", "unlock", "--email", "bot@example.com") == 2
    assert capsys.readouterr().err.startswith("jobledger users unlock: no store at")
    assert run(monkeypatch, "users", "create", "--email", "bot@example.com", "--role", "worker",
               stdin=PASSWORD) == 0
    assert run(monkeypatch, "users", "unlock", "--email", "nobody@example.com") == 1
    assert capsys.readouterr().err.startswith("jobledger users unlock: no user with email")
    assert run(monkeypatch, "users", "unlock", "--email", "not an email") == 2
    assert capsys.readouterr().err.startswith("jobledger users unlock: email:")
    with pytest.raises(SystemExit) as parsed:
        run(monkeypatch, "users", "unlock")
    assert parsed.value.code == 2
