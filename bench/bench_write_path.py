"""Write path: JobLedger commands/s against a raw stateless service doing the same durable work.

Measured: 5,000 jobs (200 with ``--quick``), each driven through the 13-command lifecycle
(create, start, 10 progress updates, complete) with ``JobLedger.create_job`` / ``start_job`` /
``update_progress`` / ``complete_job``, one command per save as the API issues them, on a SQLite
file (``stores``: WAL, synchronous=FULL) and on PostgreSQL (synchronous_commit=on, the
server default).

Reference: the same commands through a minimal stateless service on plain sqlite3 / psycopg 3.
Per command, in one transaction: select all of the job's event rows, decode them and check the
command against the folded state, insert one event row (a JSON payload of similar size) into a
table shaped like the library's (originator_id, originator_version, topic, state; the same
primary key; on PostgreSQL a bigserial notification id with a unique index), commit. The
jobledger side pays for whatever ``stores`` configures (today also the ``event_timestamps``
time-index row written in the same transaction); the reference writes the event row only.

Both sides run alternately in chunks of jobs, their order flipping every chunk, so that machine
noise hits both. Figure: jobledger commands/s; reference: raw commands/s; ratio = jobledger / raw
(target >= 0.8 on both stores).
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

import psycopg

from bench.results import Figure
from bench.support import (
    Contender,
    PostgresUnavailable,
    alternate,
    postgres_database,
    sqlite_directory,
)
from domain.job import Job
from domain.ledger import JobLedger
from stores import Store

JOBS = 5_000
QUICK_JOBS = 200
CHUNK_JOBS = 250
QUICK_CHUNK_JOBS = 50
WARMUP_JOBS = 10
PROGRESS_UPDATES = 10
COMMANDS_PER_JOB = 3 + PROGRESS_UPDATES
TOTAL_ITEMS = 1_000
JOB_TYPE = "import-csv"
ACTOR = "worker-bench"
RESULT = {"imported": TOTAL_ITEMS}

RawEvent = tuple[str, bytes]
RawCommand = Callable[["RawJob"], RawEvent]


class JobService(Protocol):
    """What the lifecycle driver needs: the four commands, one save each."""

    def create(self, index: int) -> UUID: ...
    def start(self, job_id: UUID) -> None: ...
    def progress(self, job_id: UUID, processed: int) -> None: ...
    def complete(self, job_id: UUID) -> None: ...
    def event_count(self) -> int: ...
    def close(self) -> None: ...


def drive(service: JobService, jobs: int) -> int:
    """Runs ``jobs`` jobs through the lifecycle, stage by stage; returns the commands issued."""
    job_ids = [service.create(index) for index in range(jobs)]
    for job_id in job_ids:
        service.start(job_id)
    for step in range(1, PROGRESS_UPDATES + 1):
        for job_id in job_ids:
            service.progress(job_id, step * TOTAL_ITEMS // PROGRESS_UPDATES)
    for job_id in job_ids:
        service.complete(job_id)
    return jobs * COMMANDS_PER_JOB


def job_data(index: int) -> dict[str, Any]:
    return {"file": f"s3://bench/input-{index:05d}.csv", "rows": TOTAL_ITEMS}


class LedgerService:
    """The system under test: JobLedger on a store URL."""

    def __init__(self, url: str) -> None:
        self.ledger = JobLedger(env=Store.from_url(url).ledger_env())

    def create(self, index: int) -> UUID:
        result = self.ledger.create_job(
            job_type=JOB_TYPE, data=job_data(index), total_items=TOTAL_ITEMS, actor=ACTOR
        )
        return result.job.id

    def start(self, job_id: UUID) -> None:
        self.ledger.start_job(job_id, actor=ACTOR)

    def progress(self, job_id: UUID, processed: int) -> None:
        self.ledger.update_progress(job_id, processed, actor=ACTOR)

    def complete(self, job_id: UUID) -> None:
        self.ledger.complete_job(job_id, RESULT, actor=ACTOR)

    def event_count(self) -> int:
        return self.ledger.head()

    def close(self) -> None:
        self.ledger.close()


class RawConflictError(Exception):
    """Raised when a raw command is not allowed by the folded state."""


@dataclass
class RawJob:
    """The state a stateless service folds from a job's rows to check a command."""

    status: str | None = None
    processed: int = 0
    total: int | None = None


def _on_created(job: RawJob, state: dict[str, Any]) -> None:
    job.status = "pending"
    job.total = state["total_items"]


def _on_started(job: RawJob, _: dict[str, Any]) -> None:
    job.status = "processing"


def _on_progress(job: RawJob, state: dict[str, Any]) -> None:
    job.processed = state["processed_items"]
    job.total = state["total_items"]


def _on_completed(job: RawJob, _: dict[str, Any]) -> None:
    job.status = "completed"


APPLY: dict[str, Callable[[RawJob, dict[str, Any]], None]] = {
    Job.Created.TOPIC: _on_created,
    Job.Started.TOPIC: _on_started,
    Job.ProgressUpdated.TOPIC: _on_progress,
    Job.Completed.TOPIC: _on_completed,
}


def fold(rows: Iterable[tuple[str, bytes]]) -> RawJob:
    job = RawJob()
    for topic, state in rows:
        APPLY[topic](job, json.loads(state))
    return job


def _event(topic: str, **fields: Any) -> RawEvent:
    payload = {"timestamp": datetime.now(UTC).isoformat(), "actor": ACTOR, **fields}
    return topic, json.dumps(payload, separators=(",", ":")).encode()


def _require(job: RawJob, status: str) -> None:
    if job.status != status:
        raise RawConflictError(f"job is {job.status}, not {status}")


def _created(index: int, _: RawJob) -> RawEvent:
    data_json = json.dumps(job_data(index), separators=(",", ":"))
    return _event(
        Job.Created.TOPIC, job_type=JOB_TYPE, data_json=data_json, total_items=TOTAL_ITEMS
    )


def _started(job: RawJob) -> RawEvent:
    _require(job, "pending")
    return _event(Job.Started.TOPIC)


def _progressed(processed: int, job: RawJob) -> RawEvent:
    _require(job, "processing")
    if processed < job.processed or (job.total is not None and processed > job.total):
        raise RawConflictError(f"progress {processed} after {job.processed} of {job.total}")
    return _event(Job.ProgressUpdated.TOPIC, processed_items=processed, total_items=job.total)


def _completed(job: RawJob) -> RawEvent:
    _require(job, "processing")
    return _event(Job.Completed.TOPIC, result_json=json.dumps(RESULT, separators=(",", ":")))


class RawService(ABC):
    """The reference: a stateless service, one transaction per command (read, check, insert)."""

    def create(self, index: int) -> UUID:
        job_id = uuid4()
        self._execute(job_id, partial(_created, index), read=False)
        return job_id

    def start(self, job_id: UUID) -> None:
        self._execute(job_id, _started)

    def progress(self, job_id: UUID, processed: int) -> None:
        self._execute(job_id, partial(_progressed, processed))

    def complete(self, job_id: UUID) -> None:
        self._execute(job_id, _completed)

    @abstractmethod
    def _execute(self, job_id: UUID, command: RawCommand, *, read: bool = True) -> None: ...

    @abstractmethod
    def event_count(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...


class RawSQLiteService(RawService):
    """Plain sqlite3: WAL, synchronous=FULL, the library's table shape."""

    CREATE = (
        "CREATE TABLE IF NOT EXISTS raw_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    SELECT = (
        "SELECT topic, state FROM raw_events WHERE originator_id = ? ORDER BY originator_version"
    )
    INSERT = "INSERT INTO raw_events VALUES (?, ?, ?, ?)"

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.execute(self.CREATE)

    def _execute(self, job_id: UUID, command: RawCommand, *, read: bool = True) -> None:
        connection = self.connection
        key = job_id.hex
        connection.execute("BEGIN IMMEDIATE")
        try:
            rows = connection.execute(self.SELECT, (key,)).fetchall() if read else []
            topic, state = command(fold(rows))
            connection.execute(self.INSERT, (key, len(rows) + 1, topic, state))
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def event_count(self) -> int:
        count: int = self.connection.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0]
        return count

    def close(self) -> None:
        self.connection.close()


class RawPostgresService(RawService):
    """Plain psycopg 3: default durability, the library's table shape with a notification id."""

    CREATE = (
        "CREATE TABLE IF NOT EXISTS raw_events (originator_id uuid NOT NULL, "
        "originator_version bigint NOT NULL, topic text, state bytea, "
        "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
    )
    CREATE_INDEX = (
        "CREATE UNIQUE INDEX IF NOT EXISTS raw_events_notification_id "
        "ON raw_events (notification_id ASC)"
    )
    SELECT = (
        "SELECT topic, state FROM raw_events WHERE originator_id = %s ORDER BY originator_version"
    )
    INSERT = (
        "INSERT INTO raw_events (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s) RETURNING notification_id"
    )

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url)
        with self.connection.transaction():
            self.connection.execute(self.CREATE)
            self.connection.execute(self.CREATE_INDEX)

    def _execute(self, job_id: UUID, command: RawCommand, *, read: bool = True) -> None:
        with self.connection.transaction(), self.connection.cursor() as cursor:
            rows = cursor.execute(self.SELECT, (job_id,), prepare=True).fetchall() if read else []
            topic, state = command(fold(rows))
            cursor.execute(self.INSERT, (job_id, len(rows) + 1, topic, state), prepare=True)
            cursor.fetchone()

    def event_count(self) -> int:
        row = self.connection.execute("SELECT COUNT(*) FROM raw_events").fetchone()
        self.connection.commit()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.connection.close()


def run(quick: bool) -> list[Figure]:
    jobs, chunk = (QUICK_JOBS, QUICK_CHUNK_JOBS) if quick else (JOBS, CHUNK_JOBS)
    figures = [sqlite_figure(jobs, chunk)]
    try:
        figures.append(postgres_figure(jobs, chunk))
    except PostgresUnavailable as error:
        print(f"write_path: PostgreSQL skipped: {error}")
    return figures


def sqlite_figure(jobs: int, chunk: int) -> Figure:
    with (
        sqlite_directory() as directory,
        closing(LedgerService(f"sqlite:///{directory / 'jobledger.db'}")) as ledger,
        closing(RawSQLiteService(directory / "raw.db")) as raw,
    ):
        return measure("sqlite", ledger, raw, jobs, chunk)


def postgres_figure(jobs: int, chunk: int) -> Figure:
    with (
        postgres_database() as url,
        closing(LedgerService(url)) as ledger,
        closing(RawPostgresService(url)) as raw,
    ):
        return measure("postgresql", ledger, raw, jobs, chunk)


def measure(store: str, ledger: JobService, raw: JobService, jobs: int, chunk: int) -> Figure:
    """Warms both sides up, then times them alternately over ``jobs`` jobs in chunks."""
    print(f"write_path: {store}, {jobs:,} jobs x {COMMANDS_PER_JOB} commands, chunks of {chunk}")
    drive(ledger, WARMUP_JOBS)
    drive(raw, WARMUP_JOBS)
    sides = [Contender("jobledger", partial(drive, ledger)), Contender("raw", partial(drive, raw))]
    alternate(chunk_sizes(jobs, chunk), sides)
    _check_counts(store, (jobs + WARMUP_JOBS) * COMMANDS_PER_JOB, ledger, raw)
    for side in sides:
        print(f"write_path: {store} {side.name}: {_summary(side)}")
    return Figure.compare(f"write_path.{store}", sides[0].rate, sides[1].rate, "commands/s")


def _summary(side: Contender) -> str:
    cpu = side.cpu_per_operation * 1e6
    return f"{side.rate:,.0f} commands/s ({side.seconds:.1f} s, client CPU {cpu:.0f} us/command)"


def chunk_sizes(jobs: int, chunk: int) -> list[int]:
    full, rest = divmod(jobs, chunk)
    return [chunk] * full + ([rest] if rest else [])


def _check_counts(store: str, expected: int, *services: JobService) -> None:
    counts = [service.event_count() for service in services]
    if any(count != expected for count in counts):
        raise RuntimeError(f"write_path {store}: expected {expected} events, stores hold {counts}")

