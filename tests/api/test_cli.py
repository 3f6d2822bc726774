"""``jobledger users`` and ``jobledger token``: passwords from stdin, tokens the API accepts."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from api.app import create_app
from api.cli import main
from api.cli.token import duration
from api.passwords import Passwords
from api.settings import Settings
from tests.api.client import AppClient
from tests.api.conftest import PASSWORD
from tests.eventually import eventually


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'events.db'}")
    monkeypatch.setenv("JOBLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("JOBLEDGER_JWT_SECRET", raising=False)
    return tmp_path


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(list(argv))


def test_users_create_then_token_issue_gives_a_working_token(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run(monkeypatch, "users", "create", "--email", "Bot@Example.com", "--role", "worker",
                  stdin=PASSWORD + "\n")
    assert created == 0
    assert "Registered bot@example.com (worker)" in capsys.readouterr().out

    assert run(monkeypatch, "token", "issue", "--email", "bot@example.com", "--ttl", "2h") == 0
    token = capsys.readouterr().out.strip()

    with AppClient(create_app(Settings.from_env(), Passwords())) as client:
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["email"] == "bot@example.com"
        login = client.post("/api/v1/auth/token",
                            data={"username": "bot@example.com", "password": PASSWORD})
        assert login.status_code == 200
        assert client.post("/api/v1/auth/setup",
                           json={"email": "a@example.com", "password": PASSWORD}).status_code == 409


def test_disabled_users_get_no_token(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run(monkeypatch, "users", "create", "--email", "bot@example.com", "--role", "worker",
        stdin=PASSWORD)
    assert run(monkeypatch, "users", "disable", "--email", "bot@example.com") == 0

    assert run(monkeypatch, "token", "issue", "--email", "bot@example.com") == 1
    assert "disabled" in capsys.readouterr().err
    assert run(monkeypatch, "users", "enable", "--email", "bot@example.com") == 0
    assert run(monkeypatch, "token", "issue", "--email", "bot@example.com") == 0


def test_a_disable_reaches_a_running_server_before_the_command_ends(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run(monkeypatch, "users", "create", "--email", "bot@example.com", "--role", "worker",
        stdin=PASSWORD)
    capsys.readouterr()
    run(monkeypatch, "token", "issue", "--email", "bot@example.com")
    headers = {"Authorization": f"Bearer {capsys.readouterr().out.strip()}"}
    with AppClient(create_app(Settings.from_env(), Passwords())) as client:
        eventually(lambda: client.app.state.read_model.runner.active, what="an active runner")
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200

        assert run(monkeypatch, "users", "disable", "--email", "bot@example.com") == 0
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_refusals_have_exit_statuses(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("users", "create", "--email", "bot@example.com", "--role", "member")
    assert run(monkeypatch, *args, stdin="short\n") == 2
    assert run(monkeypatch, *args, stdin=PASSWORD) == 0
    assert run(monkeypatch, *args, stdin=PASSWORD) == 2
    assert "already registered" in capsys.readouterr().err
    assert run(monkeypatch, "token", "issue", "--email", "nobody@example.com") == 1
    with pytest.raises(SystemExit) as raised:
        run(monkeypatch, *args, "--password", PASSWORD)
    assert raised.value.code == 2


def test_serve_refuses_bad_settings(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", "mysql://nope/x")
    assert run(monkeypatch, "serve") == 2
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", "memory://")
    assert run(monkeypatch, "serve", "--workers", "2") == 2
    assert "memory://" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("15m", 900), ("2h", 7200),
                                                ("30d", 2_592_000)])
def test_token_lifetimes(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1w", "-5", "0", "400d", "1.5h"])
def test_bad_token_lifetimes(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)
