"""``jobledger jobs retry`` and the worker lines of ``jobledger projections status``, on the
stores a command line can share with a server (SQLite, PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from api.cli import main
from domain.job import JobStatus
from domain.ledger import JobLedger
from projections import ProjectionRunner, open_view
from stores import Store
from tests.conftest import on_backends

SHARED = on_backends("sqlite", "postgresql")


@pytest.fixture
def ledger(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobLedger]:
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", store_url)
    ledger = JobLedger(env=Store.from_url(store_url).ledger_env())
    yield ledger
    ledger.close()


def _failed(ledger: JobLedger) -> UUID:
    job_id = ledger.create_job(job_type="t", actor="owner", max_attempts=1).job.id
    ledger.start_job(job_id, actor="worker")
    ledger.fail_job(job_id, "boom", actor="worker")
    return job_id


@SHARED
def test_jobs_retry_sends_a_failed_job_back_to_pending(
    ledger: JobLedger, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _failed(ledger)
    assert main(["jobs", "retry", str(job_id), "--max-attempts", "2"]) == 0
    assert f"job {job_id} is pending" in capsys.readouterr().out
    job = ledger.get_job(job_id)
    assert (job.status, job.max_attempts) == (JobStatus.PENDING, 3)
    assert ledger.history(job_id)[-1].actor.startswith("cli")


@SHARED
def test_jobs_retry_refusals_have_exit_statuses(
    ledger: JobLedger, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "retry", str(uuid4())]) == 1
    assert "not found" in capsys.readouterr().err
    pending = ledger.create_job(job_type="t", actor="owner").job.id
    assert main(["jobs", "retry", str(pending)]) == 2
    assert "it is pending; retry is allowed only when it is failed or cancelled" in (
        capsys.readouterr().err
    )
    assert main(["jobs", "retry", str(_failed(ledger)), "--max-attempts", "0"]) == 2
    assert "maxAttempts: must be between 1 and 100" in capsys.readouterr().err


@SHARED
def test_projections_status_shows_leases_and_the_sweeper(
    ledger: JobLedger, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    held = ledger.create_job(job_type="t", actor="owner").job.id
    ledger.start_job(held, actor="worker", lease_seconds=600)
    with open_view(Store.from_url(store_url)) as view:
        ProjectionRunner(ledger, view).catch_up()
        assert main(["projections", "status"]) == 0
        out = capsys.readouterr().out
        assert "sweeper   none active" in out
        assert re.search(r"leases    next passes in (599|600)\.\d s", out), out
        assert "overdue   none" in out
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        ledger.clock = lambda: an_hour_ago
        lost = ledger.create_job(job_type="t", actor="owner").job.id
        ledger.start_job(lost, actor="worker", lease_seconds=60)
        ProjectionRunner(ledger, view).catch_up()
    assert main(["projections", "status"]) == 0
    out = capsys.readouterr().out
    assert "leases    oldest passed 3540" in out
    assert "overdue   1 leases passed, not yet ended by the sweeper" in out
