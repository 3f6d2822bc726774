"""The authorisation matrix: every route of the OpenAPI document x every kind of caller.

The routes come from the app's own OpenAPI document, so a new route fails here until it is given
its rule below. Each case runs on a fresh job in a state where the command is allowed, so an
allowed caller gets the route's success status and a refused one gets 401, 403 or 404.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.app import create_app
from api.passwords import Passwords
from domain.user import Role
from tests.api.client import AppClient
from tests.api.conftest import PASSWORD, People, make_settings
from tests.api.forge import bad_tokens

PUBLIC, ANY, ADMIN = "public", "any", "admin"
WORKERS, VISIBLE, OWNER = "workers", "visible", "owner"
SUCCESS = 200

#: "METHOD path" -> (who may call it, success status, job state needed, body)
RULES: dict[str, tuple[str, int, str | None, Any]] = {
    "POST /api/v1/auth/setup": (PUBLIC, 409, None, {"email": "x@x.org", "password": PASSWORD}),
    "POST /api/v1/auth/token": (PUBLIC, SUCCESS, None, None),
    "GET /api/v1/auth/me": (ANY, SUCCESS, None, None),
    "PATCH /api/v1/auth/me": (
        ANY, SUCCESS, None, {"currentPassword": PASSWORD, "newPassword": PASSWORD}
    ),
    "POST /api/v1/users": (ADMIN, 201, None, None),
    "GET /api/v1/users": (ADMIN, SUCCESS, None, None),
    "GET /api/v1/users/{user_id}": (ADMIN, SUCCESS, None, None),
    "GET /api/v1/users/{user_id}/history": (ADMIN, SUCCESS, None, None),
    "PATCH /api/v1/users/{user_id}": (ADMIN, SUCCESS, None, {"role": "worker"}),
    "POST /api/v1/jobs": (ANY, 201, None, {"type": "import"}),
    "GET /api/v1/jobs": (ANY, SUCCESS, None, None),
    "GET /api/v1/jobs/{job_id}": (VISIBLE, SUCCESS, "pending", None),
    "DELETE /api/v1/jobs/{job_id}": (OWNER, SUCCESS, "pending", None),
    "POST /api/v1/jobs/{job_id}/cancel": (OWNER, SUCCESS, "pending", {"reason": "no"}),
    "GET /api/v1/jobs/{job_id}/progress": (PUBLIC, SUCCESS, "pending", None),
    "GET /api/v1/jobs/{job_id}/history": (VISIBLE, SUCCESS, "pending", None),
    "POST /api/v1/jobs/{job_id}/start": (WORKERS, SUCCESS, "pending", None),
    "POST /api/v1/jobs/{job_id}/progress": (WORKERS, SUCCESS, "processing", {"processedItems": 1}),
    "POST /api/v1/jobs/{job_id}/errors": (WORKERS, SUCCESS, "processing", {"message": "m"}),
    "POST /api/v1/jobs/{job_id}/complete": (WORKERS, SUCCESS, "processing", {"result": 1}),
    "POST /api/v1/jobs/{job_id}/fail": (WORKERS, SUCCESS, "pending", {"reason": "r"}),
    "POST /api/v1/jobs/{job_id}/heartbeat": (WORKERS, SUCCESS, "processing", {"attempt": 1}),
    "POST /api/v1/jobs/{job_id}/retry": (OWNER, SUCCESS, "failed", {"maxAttempts": 1}),
    "POST /api/v1/jobs/claim": (WORKERS, SUCCESS, None, {"types": ["nothing-of-this-type"]}),
    "POST /api/v1/jobs/commands": (
        WORKERS, SUCCESS, None,
        {"commands": [{"jobId": "0d2c4f3e-1111-4a2b-8c3d-123456789abc", "op": "errors",
                       "message": "m"}]},
    ),
    # Probed with a malformed Last-Event-ID: a caller let through gets as far as its 422 (an
    # open stream never ends, so it is not opened here; tests/streams opens real ones).
    "GET /api/v1/events": (ANY, 422, None, None),
    "GET /api/health": (PUBLIC, SUCCESS, None, None),
}

INVALID = ("no token", "expired", "bad signature", "alg none", "wrong aud", "wrong iss",
           "disabled user")
CALLERS = (*INVALID, "member not owner", "member owner", "worker", "admin")


def expected_status(route: str, caller: str) -> int:
    """What the contract says this caller gets from this route."""
    who, success, _, _ = RULES[route]
    if who == PUBLIC:
        return success
    if caller in INVALID:
        return 401
    member = caller.startswith("member")
    if (who == ADMIN and caller != "admin") or (who == WORKERS and member):
        return 403
    if who in (VISIBLE, OWNER) and caller == "member not owner":
        return 404
    if who == OWNER and caller == "worker":
        return 403
    return success


def _openapi_routes() -> list[str]:
    schema = create_app(make_settings("memory://", Path("unused")), Passwords()).openapi()
    methods = ("get", "post", "put", "patch", "delete")
    return [f"{m.upper()} {path}" for path, item in schema["paths"].items() for m in item
            if m in methods]


ROUTES = _openapi_routes()


def test_every_route_has_a_rule() -> None:
    assert sorted(ROUTES) == sorted(RULES)


class Matrix:
    """A running app with a member who owns the jobs, another member, a worker and an admin."""

    def __init__(self, client: AppClient, password_hash: str) -> None:
        self.client = client
        self.people = People(client.app, password_hash)
        disabled = self.people.make("disabled@example.com", Role.WORKER)
        self.people.ledger.disable_user(disabled.user.id, actor="test")
        self.headers = {
            **{k: _bearer(v) for k, v in bad_tokens(self.people.member).items()},
            "no token": {},
            "disabled user": disabled.headers,
            "member not owner": self.people.other.headers,
            "member owner": self.people.member.headers,
            "worker": self.people.worker.headers,
            "admin": self.people.admin.headers,
        }
        self._numbers = itertools.count()

    def job_in(self, state: str) -> str:
        ledger, owner = self.people.ledger, self.people.member.id
        job = ledger.create_job(job_type="import", total_items=10, actor=owner).job
        if state == "processing":
            ledger.start_job(job.id, actor=self.people.worker.id)
        if state == "failed":
            ledger.fail_job(job.id, "broken", actor=self.people.worker.id)
        return str(job.id)

    def request(self, route: str, caller: str) -> int:
        method, path = route.split(" ")
        _, _, state, body = RULES[route]
        number = next(self._numbers)
        if state is not None:
            path = path.replace("{job_id}", self.job_in(state))
        if "{user_id}" in path:
            path = path.replace("{user_id}", self.people.make(f"u{number}@x.org", Role.MEMBER).id)
        kwargs: dict[str, Any] = {"headers": self.headers[caller]}
        if route == "POST /api/v1/auth/token":
            kwargs["data"] = {"username": self.people.member.email, "password": PASSWORD}
        elif route == "POST /api/v1/users":
            kwargs["json"] = {"email": f"new{number}@x.org", "password": PASSWORD, "role": "member"}
        elif route == "GET /api/v1/events":
            kwargs["headers"] = {**kwargs["headers"], "Last-Event-ID": "probe"}
        elif body is not None:
            kwargs["json"] = body
        response = self.client.request(method, path, **kwargs)
        assert response.status_code < 500, response.text
        return response.status_code


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, password_hash: str) -> Iterator[Matrix]:
    settings = make_settings("memory://", tmp_path_factory.mktemp("matrix"))
    app: FastAPI = create_app(settings, Passwords())
    with AppClient(app) as client:
        yield Matrix(client, password_hash)


@pytest.mark.parametrize(
    ("route", "caller"), [pytest.param(r, c, id=f"{r}-{c}") for r in ROUTES for c in CALLERS]
)
def test_route_answers_each_caller_as_the_contract_says(
    matrix: Matrix, route: str, caller: str
) -> None:
    assert matrix.request(route, caller) == expected_status(route, caller)


def test_progress_needs_a_token_when_it_is_not_public(
    tmp_path: Path, password_hash: str
) -> None:
    app = create_app(make_settings("memory://", tmp_path, public_progress=False), Passwords())
    with AppClient(app) as client:
        matrix = Matrix(client, password_hash)
        route = "GET /api/v1/jobs/{job_id}/progress"
        answers = {caller: matrix.request(route, caller) for caller in CALLERS}
    assert answers == {
        caller: 401 if caller in INVALID else 404 if caller == "member not owner" else 200
        for caller in CALLERS
    }
