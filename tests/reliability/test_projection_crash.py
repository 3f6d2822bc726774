"""Crash: kill -9 the projection runner at random points while it catches up on 100,000 events.

A runner process (``python -m api.cli.projections run``, the handler of ``jobledger projections
run``) is started, killed with SIGKILL a random 0-20 ms after its first commit (so inside a
later batch, anywhere in it), and restarted, 20 times; then it runs to the head. (20 ms: a
runner on an idle machine projects over 1,000 events in that time, and all 20 kills must land
before it reaches the head: on SQLite each restart got about 2,500 events further.)
Each transaction holds a batch's rows, counts and position together, so whatever instant the
kill lands on, the restarted runner carries on exactly where the last commit left it: the final
table (a hash of every row and the counts) must equal the table a fresh rebuild produces.

The history is written fast, not one command per save: the domain's own commands build each
job's events, interleaved as if 200 jobs ran at once, and ``JobLedger.save`` records them 2,000
events per transaction (about 7,800 jobs).

SQLite and PostgreSQL only: for the in-memory store a crash test makes no sense (nothing
survives the process, so there is nothing to restart from).
"""

from __future__ import annotations

import hashlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from domain.job import Job, JobStatus
from domain.ledger import JobLedger
from projections import JobSummaryView, ProjectionRunner, open_view, rebuild
from stores import Store
from tests.conftest import on_backends
from tests.eventually import eventually

EVENTS = 100_000
KILLS = 20
MAX_KILL_DELAY = 0.02
CONCURRENT_JOBS = 200
INSERT_BATCH = 2_000
SEED = int(os.environ.get("JOBLEDGER_CRASH_SEED", "20261128"))


def write_history(ledger: JobLedger, events: int, rng: random.Random) -> None:
    """About ``events`` events of interleaved job lifecycles, inserted in bulk transactions."""
    live: list[Job] = []
    pending: list[Any] = []
    written = 0
    while written < events:
        if len(live) < CONCURRENT_JOBS:
            job = Job.create(
                job_id=uuid4(), job_type=rng.choice(("import", "export")), data=None,
                total_items=100, actor=rng.choice(("alice", "bob")),
            )  # fmt: skip
            live.append(job)
        else:
            job = rng.choice(live)
            _advance(job, rng)
            if job.status.is_terminal:
                live.remove(job)
        new_events = job.collect_events()
        pending += new_events
        written += len(new_events)
        if len(pending) >= INSERT_BATCH:
            ledger.save(*pending)
            pending = []
    if pending:
        ledger.save(*pending)


def _advance(job: Job, rng: random.Random) -> None:
    roll = rng.random()
    if job.status is JobStatus.PENDING:
        if roll < 0.9:
            job.start(actor="w")
        elif roll < 0.95:
            job.cancel(actor="w")
        else:
            job.fail("never started", actor="w")
    elif job.processed_items >= 100 or roll < 0.01:
        job.complete(actor="w") if roll < 0.9 else job.fail("gave up", actor="w", retry=False)
    elif roll < 0.1:
        job.log_error(f"item {job.processed_items} failed", actor="w")
    else:
        job.update_progress(min(job.processed_items + rng.randrange(1, 20), 100), actor="w")


@pytest.fixture
def runner_process(store_url: str) -> Iterator[Any]:
    """Starts ``jobledger projections run`` processes; yields a starter; kills leftovers."""
    started: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "JOBLEDGER_DATABASE_URL": store_url, "PYTHONUNBUFFERED": "1"}

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli.projections", "run", "--batch-size", "200"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        started.append(process)
        _read_until(process, b"runner active", timeout=30.0)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.slow
@on_backends("sqlite", "postgresql")
def test_runners_killed_at_random_points_leave_the_table_a_rebuild_gives(
    ledger: JobLedger, store_url: str, runner_process: Any
) -> None:
    rng = random.Random(SEED)
    write_history(ledger, EVENTS, rng)
    head = ledger.head()
    view = open_view(Store.from_url(store_url))
    try:
        positions = []
        for _ in range(KILLS):
            before = view.position()
            process = runner_process()
            eventually(lambda before=before: view.position() > before, 30.0,
                       what="progress of the runner process")  # fmt: skip
            time.sleep(rng.uniform(0.0, MAX_KILL_DELAY))
            process.send_signal(signal.SIGKILL)
            process.wait()
            positions.append(view.position())
        assert positions == sorted(set(positions)), "every restart made progress, none went back"
        assert positions[-1] < head, "every kill landed while the runner was catching up"

        final = runner_process()
        assert view.wait_for(head, timeout=120.0)
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0
        after_crashes = _table_hash(view)

        rebuild(ledger, view)
        assert _table_hash(view) == after_crashes
        kept, actual = view.recount()
        assert kept == actual
        assert ProjectionRunner(ledger, view).catch_up() == head
    finally:
        view.close()
    print(f"seed {SEED}: positions after each kill {positions} of {head}")


def _table_hash(view: JobSummaryView[Any]) -> str:
    digest = hashlib.sha256()
    for row in view.rows():
        digest.update(repr(row).encode())
    digest.update(repr(view.counts()).encode())
    digest.update(str(view.position()).encode())
    return digest.hexdigest()


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise AssertionError(f"the runner process did not print {marker!r}: {seen!r}")
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if ready:
            seen += os.read(process.stdout.fileno(), 4096)
