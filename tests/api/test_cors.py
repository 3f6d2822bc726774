"""CORS: off unless ``JOBLEDGER_CORS_ORIGINS`` lists the browser origins whose pages may call the
API (Starlette's CORSMiddleware), then for those only, with the headers this API's clients need
to send (Authorization, If-Match, Idempotency-Key...) and to read (ETag, Location...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.app import create_app
from api.passwords import Passwords
from api.settings import Settings, SettingsError
from tests.api.client import AppClient
from tests.api.conftest import People, make_settings
from tests.conftest import MEMORY_ONLY

JOBS = "/api/v1/jobs"
APP_ORIGIN = "https://app.example.com"
ORIGINS = (APP_ORIGIN, "http://localhost:5173")
OTHER_ORIGIN = "https://evil.example.net"


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """The app of these tests allows two origins."""
    return make_settings(store_url, tmp_path, cors_origins=ORIGINS)


def _preflight(client: AppClient, origin: str, method: str = "POST") -> dict[str, str]:
    response = client.request("OPTIONS", JOBS, headers={
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, if-match, idempotency-key",
    })  # fmt: skip
    return {"status": str(response.status_code), **response.headers}


def test_cors_is_off_by_default(tmp_path: Path, password_hash: str) -> None:
    app = create_app(make_settings("memory://", tmp_path), Passwords())
    with AppClient(app) as client:
        people = People(client.app, password_hash)

        read = client.get(JOBS, headers={**people.admin.headers, "Origin": APP_ORIGIN})
        preflight = _preflight(client, APP_ORIGIN)

    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
    assert preflight["status"] == "405" and preflight["allow"] == "GET, POST"
    assert "access-control-allow-origin" not in preflight


@MEMORY_ONLY
def test_a_listed_origin_may_call_the_api_and_read_its_answers(
    client: AppClient, people: People
) -> None:
    preflight = _preflight(client, APP_ORIGIN)
    created = client.post(
        JOBS, json={"type": "import"}, headers={**people.member.headers, "Origin": APP_ORIGIN}
    )
    refused = client.get(JOBS, headers={"Origin": APP_ORIGIN})

    assert preflight["status"] == "200"
    assert preflight["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in preflight["access-control-allow-methods"]
    allowed = preflight["access-control-allow-headers"].lower()
    assert all(h in allowed for h in ("authorization", "content-type", "if-match", "idempotency"))
    assert preflight["access-control-max-age"] == "600"
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = created.headers["access-control-expose-headers"].lower()
    assert "etag" in exposed and "location" in exposed and "retry-after" in exposed
    assert "origin" in created.headers["vary"].lower()
    assert "access-control-allow-credentials" not in created.headers
    assert refused.status_code == 401, "a page reads the problem of a refused request too"
    assert refused.headers["access-control-allow-origin"] == APP_ORIGIN


@MEMORY_ONLY
def test_other_origins_are_not_let_in(client: AppClient, people: People) -> None:
    preflight = _preflight(client, OTHER_ORIGIN)
    read = client.get(JOBS, headers={**people.admin.headers, "Origin": OTHER_ORIGIN})

    assert preflight["status"] == "400" and "access-control-allow-origin" not in preflight
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_the_origins_come_from_the_environment(tmp_path: Path) -> None:
    env = {"JOBLEDGER_DATA_DIR": str(tmp_path), "JOBLEDGER_JWT_SECRET": "s" * 40}

    assert Settings.from_env(env).cors_origins == ()
    listed = {**env, "JOBLEDGER_CORS_ORIGINS": f" {APP_ORIGIN} , http://localhost:5173,"}
    assert Settings.from_env(listed).cors_origins == ORIGINS
    assert Settings.from_env({**env, "JOBLEDGER_CORS_ORIGINS": "*"}).cors_origins == ("*",)
    for wrong in ("https://app.example.com/", "app.example.com", "https://app.example.com/ui"):
        with pytest.raises(SettingsError, match=r"JOBLEDGER_CORS_ORIGINS.*no path"):
            Settings.from_env({**env, "JOBLEDGER_CORS_ORIGINS": wrong})
