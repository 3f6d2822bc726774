"""``jobledger history``: timelines, past states, the export of the whole log, and exit statuses.

The command reads a store another process wrote, so these tests run on SQLite and PostgreSQL
(an in-memory store would be empty in the command's own ledger). The export's memory test runs a
real ``jobledger`` process over 100,000 events and compares its peak RSS with an export of 1,000.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import pytest

from api.cli import main
from api.schemas.jobs import JobOut
from domain.job import Job
from domain.ledger import JobLedger
from domain.user import Role
from stores import Store

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
EXPORT_EVENTS = 100_000
BASELINE_EVENTS = 1_000
#: Peak RSS may grow this much from exporting 1,000 events to exporting 100,000 (it barely moves;
#: holding the whole log would take hundreds of MB).
MAX_RSS_GROWTH_BYTES = 40 * 2**20
JOBLEDGER = Path(sys.executable).parent / "jobledger"
#: ``ru_maxrss`` is in KiB on Linux, in bytes on macOS.
RSS_UNIT = 1 if sys.platform == "darwin" else 1024


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cli_env(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", store_url)
    return store_url


class Story:
    """An admin, a worker and a job with a few events, written through the ledger."""

    def __init__(self, ledger: JobLedger) -> None:
        self.admin = ledger.set_up_admin(email="admin@example.com", password_hash=HASH)
        self.worker = ledger.register_user(
            email="worker@example.com", role=Role.WORKER, password_hash=HASH,
            actor=str(self.admin.id),
        )
        ledger.change_password(self.worker.id, HASH.replace("aGFz", "bmV3"), actor="cli:root")
        admin, worker = str(self.admin.id), str(self.worker.id)
        self.job = ledger.create_job(
            job_type="import", data={"file": "a.csv"}, total_items=10, actor=admin
        ).job
        ledger.start_job(self.job.id, actor=worker)
        ledger.update_progress(self.job.id, 4, actor=worker)
        ledger.log_error(self.job.id, "row 5 broken", item="5", details={"line": 5}, actor="cli:x")
        self.states = [ledger.job_as_of(self.job.id, version=v) for v in range(1, 5)]


@pytest.fixture
def story(cli_env: str, ledger: JobLedger) -> Story:
    return Story(ledger)


def run(*argv: str) -> int:
    return main(["history", *argv])


def test_the_timeline_shows_version_time_event_actor_and_changes(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(str(story.job.id)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Job {story.job.id}"
    rows = [line.split() for line in lines[2:]]
    assert [row[:4] for row in rows] == [
        ["1", rows[0][1], "Created", "admin@example.com"],
        ["2", rows[1][1], "Started", "worker@example.com"],
        ["3", rows[2][1], "ProgressUpdated", "worker@example.com"],
        ["4", rows[3][1], "ErrorLogged", "cli:x"],
    ]
    assert rows[0][1] == story.states[0].created_at.isoformat().replace("+00:00", "Z")
    assert "type=import" in lines[2] and 'data={"file": "a.csv"}' in lines[2]
    assert "processedItems=4 totalItems=10" in lines[4]
    assert 'message=row 5 broken item=5 details={"line": 5}' in lines[5]


def test_json_lines_carry_the_apis_fields(story: Story, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(story.job.id), "--json") == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["version"], e["type"], e["actorEmail"]) for e in events] == [
        (1, "Created", "admin@example.com"), (2, "Started", "worker@example.com"),
        (3, "ProgressUpdated", "worker@example.com"), (4, "ErrorLogged", None),
    ]
    assert {e["jobId"] for e in events} == {str(story.job.id)}
    assert events[0]["actor"] == str(story.admin.id)
    created = dict(events[0]["data"])
    assert created.pop("runAt") <= events[0]["at"], "due at once: the clock read before the event"
    assert created == {
        "type": "import", "data": {"file": "a.csv"}, "totalItems": 10, "priority": 0,
        "maxAttempts": 3,
    }  # fmt: skip
    assert events[3]["at"] == story.states[3].updated_at.isoformat().replace("+00:00", "Z")


def test_the_state_as_of_a_version_or_an_instant(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    for state in story.states:
        expected = JobOut.of(state).model_dump(mode="json", by_alias=True)
        assert run(str(story.job.id), "--as-of-version", str(state.version), "--json") == 0
        assert json.loads(capsys.readouterr().out) == expected
        assert run(str(story.job.id), "--as-of", state.updated_at.isoformat(), "--json") == 0
        assert json.loads(capsys.readouterr().out) == expected
    assert run(str(story.job.id), "--as-of-version", "2") == 0
    readable = capsys.readouterr().out
    fields = dict(line.split(None, 1) for line in readable.splitlines() if " " in line.strip())
    assert (fields["status"], fields["version"]) == ("processing", "2")


def test_the_export_streams_every_event_in_log_order_without_secrets(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--all", "--json") == 0
    output = capsys.readouterr().out
    events = [json.loads(line) for line in output.splitlines()]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions) == 10
    assert [e["type"] for e in events if e["aggregate"] == "user"] == [
        "Registered", "Registered", "PasswordChanged",
    ]
    assert [e["type"] for e in events if e["aggregate"] == "job"] == [
        "Created", "Started", "ProgressUpdated", "ErrorLogged",
    ]
    assert "argon2" not in output and "passwordHash" not in output

    since = story.states[2].updated_at
    assert run("--all", "--since", since.isoformat(), "--json") == 0
    later = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["type"], e["version"]) for e in later] == [
        ("ProgressUpdated", 3), ("ErrorLogged", 4),
    ]
    assert run("--all") == 0
    assert len(capsys.readouterr().out.splitlines()) == 10


def test_a_long_timeline_is_read_page_by_page(
    cli_env: str, ledger: JobLedger, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Job.create(job_id=uuid4(), job_type="export", data=None, total_items=5000, actor="a")
    job.start(actor="w")
    for processed in range(1, 2500):
        job.update_progress(processed, actor="w")
    ledger.save(job)
    assert run(str(job.id), "--json") == 0
    versions = [json.loads(line)["version"] for line in capsys.readouterr().out.splitlines()]
    assert versions == list(range(1, 2502))


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["{unknown}"], 1, "not found"),
        (["{job}", "--as-of", "2000-01-01T00:00:00Z"], 1, "did not exist"),
        (["{job}", "--as-of-version", "5"], 1, "has no version 5"),
        (["{job}", "--as-of-version", "0"], 2, "asOfVersion"),
        (["{job}", "--as-of", "yesterday"], 2, "not an ISO 8601 time"),
        (["{job}", "--as-of", "2026-01-01T00:00:00"], 2, "needs a time zone"),
        (["not-a-uuid"], 2, "is not a job id"),
        ([], 2, "give a JOB_ID"),
        (["{job}", "--all"], 2, "not both"),
        (["--all", "--as-of-version", "1"], 2, "need a JOB_ID"),
        (["{job}", "--since", "2026-01-01T00:00:00Z"], 2, "--since goes with --all"),
        (["--all", "--since", "soon"], 2, "not an ISO 8601 time"),
    ],
)
def test_exit_statuses_and_messages(
    story: Story, capsys: pytest.CaptureFixture[str], argv: list[str], status: int, message: str
) -> None:
    names = {"{job}": str(story.job.id), "{unknown}": str(uuid4())}
    assert run(*[names.get(arg, arg) for arg in argv]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("jobledger history: ") and message in captured.err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres@127.0.0.1:1/nowhere", "could not open the store"),
        ("mysql://db/jobs", "unsupported scheme"),
    ],
)
def test_an_unusable_store_is_exit_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    monkeypatch.setenv("JOBLEDGER_DATABASE_URL", url)
    assert run(str(uuid4())) == 2
    assert message in capsys.readouterr().err


def _write_events(url: str, events: int, per_job: int = 1_000) -> None:
    """``events`` events of progressing jobs, built by the domain, saved ``per_job`` at a time."""

    class BulkLedger(JobLedger):
        snapshotting_intervals: ClassVar[dict[type[Any], int]] = {}

    ledger = BulkLedger(env=Store.from_url(url).ledger_env())
    try:
        for _ in range(events // per_job):
            job = Job.create(
                job_id=uuid4(), job_type="export", data={"rows": 1}, total_items=10**6, actor="a"
            )
            job.start(actor="worker-1")
            for processed in range(1, per_job - 1):
                job.update_progress(processed, actor="worker-1")
            ledger.save(job)
    finally:
        ledger.close()


def _export(url: str, output: Path) -> tuple[int, int]:
    """Runs ``jobledger history --all --json`` into ``output``; returns (lines, peak RSS bytes)."""
    env = {**os.environ, "JOBLEDGER_DATABASE_URL": url}
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(JOBLEDGER), "history", "--all", "--json"], stdout=out, stderr=subprocess.PIPE,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    assert process.returncode == 0, process.stderr.read().decode()
    process.stderr.close()
    lines = 0
    last_position = 0
    with output.open() as exported:
        for line in exported:
            position = json.loads(line)["position"]
            assert position > last_position
            last_position, lines = position, lines + 1
    return lines, usage.ru_maxrss * RSS_UNIT


@pytest.mark.slow
def test_exporting_100000_events_keeps_memory_flat(tmp_path: Path) -> None:
    small, large = f"sqlite:///{tmp_path / 'small.db'}", f"sqlite:///{tmp_path / 'large.db'}"
    _write_events(small, BASELINE_EVENTS)
    _write_events(large, EXPORT_EVENTS)
    small_lines, small_peak = _export(small, tmp_path / "small.jsonl")
    large_lines, large_peak = _export(large, tmp_path / "large.jsonl")
    assert (small_lines, large_lines) == (BASELINE_EVENTS, EXPORT_EVENTS)
    growth = large_peak - small_peak
    assert growth < MAX_RSS_GROWTH_BYTES, (
        f"peak RSS {large_peak / 2**20:.0f} MiB for {EXPORT_EVENTS:,} events vs "
        f"{small_peak / 2**20:.0f} MiB for {BASELINE_EVENTS:,}"
    )


def test_times_are_parsed_with_their_zone(story: Story, capsys: pytest.CaptureFixture[str]) -> None:
    created = story.states[0].created_at
    shifted = (created + timedelta(hours=2)).replace(tzinfo=None).isoformat() + "+02:00"
    assert datetime.fromisoformat(shifted) == created
    assert run(str(story.job.id), "--as-of", shifted, "--json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
