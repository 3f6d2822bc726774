"""The command line's conventions: it never invents a store, says where it looks for one, and
answers every refusal with the exit status ``jobledger --help`` states (0 done; 1 not found or
differs; 2 bad input, no store, or the store failed), its message prefixed with the command."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from api.cli import build_parser
from api.cli.token import duration
from tests.api.conftest import PASSWORD
from tests.api.test_cli import run

READ_ONLY_COMMANDS = [
    ("history", "--all"),
    ("projections", "status"),
    ("projections", "verify"),
    ("projections", "rebuild"),
    ("token", "issue", "--email", "bot@example.com"),
    ("users", "disable", "--email", "bot@example.com"),
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", "sqlite:///store/events.db")
    monkeypatch.setenv("JOBLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("JOBLEDGER_JWT_SECRET", raising=False)
    return tmp_path


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=" ".join)
def test_a_command_that_reads_refuses_when_there_is_no_store_and_creates_nothing(
    argv: tuple[str, ...], env: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert run(monkeypatch, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jobledger {argv[0]}"), err
    assert "no store at sqlite:store/events.db" in err and "JOBLEDGER_DATABASE_URL" in err
    assert sorted(p.name for p in env.iterdir()) == [], "the command created files"


def test_users_create_creates_the_store_and_then_the_others_find_it(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("users", "create", "--email", "bot@example.com", "--role", "worker")
    assert run(monkeypatch, *args, stdin=PASSWORD) == 0
    assert (env / "store" / "events.db").is_file()
    assert run(monkeypatch, "projections", "status") == 0
    assert run(monkeypatch, "token", "issue", "--email", "bot@example.com") == 0


def test_refusals_name_what_was_not_found_and_use_the_stated_statuses(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("users", "create", "--email", "bot@example.com", "--role", "worker")
    assert run(monkeypatch, *args, stdin=PASSWORD) == 0
    capsys.readouterr()
    assert run(monkeypatch, "token", "issue", "--email", "nobody@example.com") == 1
    assert capsys.readouterr().err.startswith(
        "jobledger token issue: no user with email 'nobody@example.com'"
    )
    assert run(monkeypatch, "users", "enable", "--email", "nobody@example.com") == 1
    assert "no user with email 'nobody@example.com'" in capsys.readouterr().err
    bad_email = ("users", "create", "--email", "not-an-email", "--role", "worker")
    assert run(monkeypatch, *bad_email, stdin=PASSWORD) == 2
    assert capsys.readouterr().err.startswith("jobledger users create: ")


@pytest.mark.parametrize(("text", "seconds"), [("60", 60), ("1m", 60), ("30d", 2_592_000)])
def test_token_lifetimes_span_the_servers_range(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["59", "31d", "365d"])
def test_token_lifetimes_outside_the_servers_range_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="between 60 s and 30 days"):
        duration(text)


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_option_has_help_and_no_help_shows_rst_markup() -> None:
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{parser.prog}: {action.option_strings or action.dest}"
        text = parser.format_help()
        assert "``" not in text, parser.prog
    top = build_parser().format_help()
    assert "JOBLEDGER_DATABASE_URL" in top and "Exit status" in top


def test_serve_says_how_to_create_the_first_admin_only_while_there_is_no_user(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: None)
    assert run(monkeypatch, "serve") == 0
    assert "Create the first admin" in capsys.readouterr().out
    args = ("users", "create", "--email", "admin@example.com", "--role", "admin")
    assert run(monkeypatch, *args, stdin=PASSWORD) == 0
    capsys.readouterr()
    assert run(monkeypatch, "serve") == 0
    assert "Create the first admin" not in capsys.readouterr().out


def test_history_export_shows_progress_on_a_terminal_only_and_never_in_its_output(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("users", "create", "--email", "admin@example.com", "--role", "admin")
    assert run(monkeypatch, *args, stdin=PASSWORD) == 0
    capsys.readouterr()
    assert run(monkeypatch, "history", "--all", "--json") == 0
    piped = capsys.readouterr()
    assert piped.err == "" and piped.out.count("\n") >= 1
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert run(monkeypatch, "history", "--all", "--json") == 0
    watched = capsys.readouterr()
    assert "events/s" in watched.err
    assert watched.out == piped.out
