"""Fixtures for the HTTP tests: an app on the current backend, a client, and people with tokens.

Users are registered through the ledger with a password hash computed once per session (argon2id
is slow on purpose); tokens are issued by the app's own token service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.passwords import Passwords
from api.settings import Settings
from domain.ledger import JobLedger
from domain.user import Role, User
from tests.api.client import AppClient

SECRET = b"a test secret that is long enough for HS256 keys"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def passwords() -> Passwords:
    return Passwords()


@pytest.fixture(scope="session")
def password_hash(passwords: Passwords) -> str:
    return passwords.hash(PASSWORD)


def make_settings(store_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(jwt_secret=SECRET, database_url=store_url, data_dir=data_dir, **overrides)


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    return make_settings(store_url, tmp_path)


@pytest.fixture
def app(settings: Settings, passwords: Passwords) -> FastAPI:
    return create_app(settings, passwords=passwords)


@pytest.fixture
def client(app: FastAPI) -> Iterator[AppClient]:
    with AppClient(app) as client:
        yield client


@dataclass(frozen=True)
class Person:
    """A registered user and a valid token of theirs."""

    user: User
    token: str

    @property
    def id(self) -> str:
        return str(self.user.id)

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class People:
    """Registers users on a started app and hands out their tokens."""

    def __init__(self, app: FastAPI, password_hash: str) -> None:
        self.app = app
        self.password_hash = password_hash
        self.admin = self._admin()
        self.member = self.make("member@example.com", Role.MEMBER)
        self.other = self.make("other@example.com", Role.MEMBER)
        self.worker = self.make("worker@example.com", Role.WORKER)

    @property
    def ledger(self) -> JobLedger:
        ledger: JobLedger = self.app.state.ledger
        return ledger

    def make(self, email: str, role: Role) -> Person:
        user = self.ledger.register_user(
            email=email, role=role, password_hash=self.password_hash, actor=str(self.admin.user.id)
        )
        return self.person(user)

    def person(self, user: User) -> Person:
        return Person(user, self.app.state.tokens.issue(user))

    def _admin(self) -> Person:
        user = self.ledger.set_up_admin(email="admin@example.com", password_hash=self.password_hash)
        return self.person(user)


@pytest.fixture
def people(client: AppClient, password_hash: str) -> People:
    return People(client.app, password_hash)


def create_job(client: AppClient, person: Person, **body: Any) -> dict[str, Any]:
    """Creates a job through the API and returns its JSON."""
    response = client.post("/api/v1/jobs", json={"type": "import", **body}, headers=person.headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Checks that the response is an RFC 9457 problem with this status, and returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"] and problem["type"]
    return problem
