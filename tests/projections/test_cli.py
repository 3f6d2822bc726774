"""``jobledger projections status|rebuild|verify`` on every backend, through ``api.cli.main``.

On ``memory://`` each command opens its own (empty) store, so there they only show that the
commands run; SQLite and PostgreSQL see the history the test wrote (tests that need it run on
those two only).
"""

from __future__ import annotations

import random
import re
import sqlite3
from contextlib import closing
from typing import Any
from uuid import UUID

import psycopg
import pytest

from api.cli import main
from domain.ledger import JobLedger
from projections import JobSummaryView, PostgresSummaryView, ProjectionRunner, SQLiteSummaryView
from tests.eventually import eventually
from tests.projections.helpers import random_command

#: For tests that need the CLI's process to see the test's store.
STORES_THAT_OUTLIVE_A_PROCESS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture
def cli(store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Runs ``jobledger projections ...`` on the test's store: (exit status, stdout, stderr)."""
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", store_url)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        status = main(["projections", *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def written(backend: str, ledger: JobLedger, view: JobSummaryView[Any]) -> int:
    """40 commands' history, projected; the number of jobs as the CLI will see them."""
    rng, job_ids = random.Random(9), []
    for _ in range(40):
        random_command(ledger, rng, job_ids)
    ProjectionRunner(ledger, view).catch_up()
    return 0 if backend == "memory" else len(job_ids)


def test_status_shows_position_head_lag_and_runner(
    cli: Any, ledger: JobLedger, written: int, backend: str
) -> None:
    head = 0 if backend == "memory" else ledger.head()
    ledger.create_job(job_type="late", actor="a")

    status, out, _ = cli("status")

    assert status == 0
    assert f"position  {head:,}" in out
    if backend != "memory":
        assert f"head      {head + 1:,}" in out
        assert "lag       1 events" in out
    assert "runner    none active" in out
    assert f"jobs      {written:,} (pending" in out


@STORES_THAT_OUTLIVE_A_PROCESS
def test_status_names_the_active_runner(
    cli: Any, backend: str, written: int, runner: ProjectionRunner
) -> None:
    eventually(lambda: runner.active, what="the runner becoming active")

    status, out, _ = cli("status")

    assert status == 0
    assert "runner    none active" not in out
    assert "pid" in out


def test_rebuild_prints_progress_and_a_summary_on_a_terminal(
    cli: Any, written: int, ledger: JobLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    status, out, _ = cli("rebuild", "--batch-size", "7")

    assert status == 0
    assert "rebuild " in out
    assert "events/s" in out
    assert f"{written:,} jobs in" in out
    assert "rebuilt job_summary:" in out.strip().splitlines()[-1]
    bars = [_visible(line) for line in out.splitlines() if "rebuilt" not in line]
    bars = [line for line in bars if "events/s" in line]
    assert bars and all(len(line) <= 80 for line in bars), bars


def test_rebuild_and_verify_print_no_progress_bar_in_a_pipe(cli: Any, written: int) -> None:
    status, out, _ = cli("rebuild", "--batch-size", "7")
    assert status == 0
    assert out.strip().splitlines() == [line for line in out.strip().splitlines()
                                        if line.startswith(("rebuilt", "note:"))]  # fmt: skip
    status, out, _ = cli("verify")
    assert status == 0
    assert out.strip().splitlines()[-1].startswith("verify: all")
    assert "rows/s" not in out


def _visible(line: str) -> str:
    """The line as a terminal shows it: without ANSI escape sequences and carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line).split("\r")[-1]


def test_verify_exits_0_when_every_row_matches(cli: Any, written: int) -> None:
    status, out, _ = cli("verify")

    assert status == 0
    assert f"all {written:,} rows match" in out


@STORES_THAT_OUTLIVE_A_PROCESS
def test_verify_catches_up_first_then_exits_1_listing_differences(
    cli: Any, backend: str, ledger: JobLedger, view: JobSummaryView[Any], written: int
) -> None:
    job_id = next(iter(view.rows())).id
    errors = ledger.get_job(job_id).error_count
    _corrupt_error_count(view, job_id)
    unprojected = ledger.create_job(job_type="late", actor="a").job.id

    status, out, _ = cli("verify")

    assert status == 1
    assert f"{job_id}: error_count is 99 in the row, {errors} in the job" in out
    assert str(unprojected) not in out, "verify let the view catch up with the head first"


def test_commands_exit_2_when_they_cannot_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", "mysql://nowhere/db")
    for command in ("status", "rebuild", "verify"):
        assert main(["projections", command]) == 2
        assert "unsupported scheme" in capsys.readouterr().err


def _corrupt_error_count(view: JobSummaryView[Any], job_id: UUID) -> None:
    """Changes a row behind the projection's back."""
    if isinstance(view, SQLiteSummaryView):
        with closing(sqlite3.connect(view.path)) as db, db:
            db.execute("UPDATE job_summary SET error_count = 99 WHERE id = ?", (job_id.bytes,))
    else:
        assert isinstance(view, PostgresSummaryView)
        with psycopg.connect(**view.conninfo) as db:
            db.execute("UPDATE job_summary SET error_count = 99 WHERE id = %s", (job_id,))
