"""Claims: 32 HTTP claimers draining due jobs from ``jobledger serve``, beside raw SQL claims.

Server: one real ``jobledger serve`` process (one uvicorn worker, as ``http_load``) on a
temporary SQLite file or a fresh PostgreSQL database. Jobs are created for setup by a
``JobLedger`` in the benchmark process (16 threads); the drain starts once the server's list
shows the last job created (its projection runner has caught up).

Drain: 32 claimers (asyncio, one keep-alive HTTP/1.1 connection each, 127.0.0.1) call
``POST /api/v1/jobs/claim`` with ``limit`` 1, then on fresh jobs ``limit`` 10, with a 1 h
lease, until every job is claimed. 5,000 jobs per drain (300 with ``--quick``), on the HTTP
side and the raw reference alike: the issue asks for 10,000, scaled down to keep this module's
full run under 4 minutes on 2 cores (a batch-1 HTTP drain on PostgreSQL runs at about 100
jobs/s here). Every returned id is checked: a job handed out twice fails the benchmark.

Figures per store and batch size: jobs claimed per second (target >= 0.5x raw with batch 10),
p50/p99 claim latency, double claims (target 0), and short claims per claim: claims that got
fewer jobs than asked while more jobs were unclaimed than all 32 claimers could hold in flight,
so that jobs were there to take (the lost races a claimer sees: the server's own count is not
exposed over HTTP).

Reference: a raw claim doing the least a correct claim must do on that store, with 32 threads
(one connection each) on its own scratch SQLite file / PostgreSQL database, in the same run,
alternating with the HTTP drain, repeated on fresh jobs until it has run for 1 s (at most 5
drains) so that its rate is not a single blip. Table ``jobs (id, status, priority, run_at,
claimed_by)`` with a partial index in claim order (``priority DESC, run_at, id`` where
pending). PostgreSQL (autocommit, synchronous_commit on): one ``UPDATE jobs SET status,
claimed_by WHERE id IN (SELECT id ... ORDER BY ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING
id``. SQLite (WAL, synchronous=FULL, as ``stores``): ``BEGIN IMMEDIATE``, select ``n`` due ids
in claim order, update them, commit; the threads take turns through a lock in the process
(SQLite runs one writer at a time anyway; waiting in its busy handler's sleeps made the
reference slower, not fairer). It is a fair floor: a durable claim that hands each job to
exactly one worker cannot do less than one locked read-and-mark transaction, while jobledger
also records a ``Started`` event, projects it, and answers full job JSON over HTTP.

Wake-up: a claimer waiting (``waitSeconds`` 10) while jobs are created one at a time over HTTP:
time from the create's 201 to the claim's answer (0 when the claim answered first), 50 samples
(10 with ``--quick``); target p99 <= 50 ms. Reference: the create request's own latency.
Rescue: jobs claimed with ``leaseSeconds`` 5, 60 ms apart, never heartbeated: time from
``leaseExpiresAt`` to a ``GET /api/v1/jobs/{id}`` answer showing ``retrying`` (each polled every
10 ms from 50 ms before its expiry), 16 samples in parallel (4 with ``--quick``); target p99
<= 2 s, which is also the reference (nothing raw does a rescue).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import sqlite3
import threading
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import psycopg

from bench.bench_http_load import (
    HOST,
    REQUEST_TIMEOUT_SECONDS,
    Connection,
    Server,
    percentile,
    process_cpu_seconds,
    start_server,
    stop_server,
)
from bench.results import Figure
from bench.support import PostgresUnavailable, postgres_database, sqlite_directory
from domain.ledger import JobLedger
from stores import Store

CLAIMERS = 32
BATCHES = (1, 10)
#: The drain's lease: long enough that nothing is rescued while the benchmark runs.
DRAIN_LEASE_SECONDS = 3600
SEED_THREADS = 16
DRAIN_TYPE, WAKEUP_TYPE, RESCUE_TYPE = "bench-drain", "bench-wakeup", "bench-rescue"
WAKEUP_WAIT_SECONDS = 10
RESCUE_LEASE_SECONDS = 5
RESCUE_STAGGER_SECONDS = 0.06
RESCUE_POLL_SECONDS = 0.01
#: Polling starts this long before the lease expires.
RESCUE_LEAD_SECONDS = 0.05
RESCUE_TIMEOUT_SECONDS = 30.0
RESCUE_TARGET_SECONDS = 2.0
VISIBLE_TIMEOUT_SECONDS = 120.0
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
#: The raw drains repeat (fresh jobs each time) until they took this long, for a steadier rate.
RAW_MIN_SECONDS = 1.0
RAW_MAX_DRAINS = 5
#: A claimer that got an error waits this long before its next claim.
ERROR_PAUSE_SECONDS = 0.05
#: More unexpected answers than this share of the claims fails the benchmark.
MAX_ERROR_FRACTION = 0.01


@dataclass(frozen=True)
class Plan:
    """How much work: jobs per drain, wake-up and rescue samples, and each drain's time limit."""

    jobs: int
    wakeups: int
    rescues: int
    drain_seconds: float


FULL = Plan(jobs=5_000, wakeups=50, rescues=16, drain_seconds=90.0)
QUICK = Plan(jobs=300, wakeups=10, rescues=4, drain_seconds=30.0)


@dataclass
class Drain:
    """What one drain saw: every id handed out, each claim's latency (ms), and its time."""

    batch: int
    jobs: int
    ids: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    short: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: CPU seconds the server and this process spent over the HTTP drain (not the raw one).
    server_cpu: float = 0.0
    driver_cpu: float = 0.0

    def record(self, items: list[str], latency_ms: float) -> None:
        """One claim's answer (the caller serialises calls)."""
        self.latencies.append(latency_ms)
        self.ids += items
        if len(items) < self.batch and not self.finishing:
            self.short += 1

    def merge(self, other: Drain) -> None:
        """Adds another drain of fresh jobs (ids never repeat across drains)."""
        self.jobs += other.jobs
        self.ids += other.ids
        self.latencies += other.latencies
        self.short += other.short
        self.errors += other.errors
        self.samples += other.samples[: 5 - len(self.samples)]
        self.seconds += other.seconds

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(text[:300])

    @property
    def done(self) -> bool:
        return len(self.ids) >= self.jobs

    @property
    def finishing(self) -> bool:
        """Whether the claims in flight may hold every job not yet counted: a claimer that
        then gets nothing stops (the others, or nobody, have the rest)."""
        return self.jobs - len(self.ids) < CLAIMERS * self.batch

    @property
    def rate(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else 0.0

    @property
    def doubles(self) -> int:
        return len(self.ids) - len(set(self.ids))

    @property
    def short_per_claim(self) -> float:
        return self.short / len(self.latencies) if self.latencies else 0.0


# -- the raw reference ----------------------------------------------------------------------


class RawQueue(ABC):
    """A minimal jobs table on its own scratch store, claimed by plain SQL from 32 threads."""

    seeded: list[str]

    @abstractmethod
    def connect(self) -> Any: ...

    @abstractmethod
    def seed(self, count: int) -> list[str]:
        """Empties the table and inserts ``count`` due pending jobs; returns their ids."""

    @abstractmethod
    def claim(self, connection: Any, worker: str, limit: int) -> list[str]:
        """Marks at most ``limit`` due jobs claimed by ``worker``; returns their ids."""

    def drains(self, batch: int, jobs: int, seconds: float) -> tuple[Drain, list[str]]:
        """Drains of ``jobs`` fresh jobs, repeated until they took ``RAW_MIN_SECONDS`` (at most
        ``RAW_MAX_DRAINS``), merged; and every job seeded."""
        total = Drain(batch, 0)
        seeded: list[str] = []
        for _ in range(RAW_MAX_DRAINS):
            total.merge(self.drain(batch, jobs, seconds))
            seeded += self.seeded
            if total.seconds >= RAW_MIN_SECONDS:
                break
        return total, seeded

    def drain(self, batch: int, jobs: int, seconds: float) -> Drain:
        """32 threads claiming ``batch`` at a time until ``jobs`` are claimed (or time is up)."""
        self.seeded = self.seed(jobs)
        drain = Drain(batch, jobs)
        lock = threading.Lock()
        ready = threading.Barrier(CLAIMERS + 1)
        last = [0.0]
        deadline = time.monotonic() + seconds

        def claimer(index: int, connection: Any) -> None:
            ready.wait(VISIBLE_TIMEOUT_SECONDS)
            while not drain.done and time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ids = self.claim(connection, f"raw-{index}", batch)
                except (sqlite3.Error, psycopg.Error) as error:
                    with lock:
                        drain.error(repr(error))
                    time.sleep(ERROR_PAUSE_SECONDS)
                    continue
                answered = time.perf_counter()
                with lock:
                    drain.record(ids, (answered - started) * 1000)
                    if ids:
                        last[0] = answered
                    elif drain.finishing:
                        return

        connections: list[Any] = []
        try:
            for _ in range(CLAIMERS):  # here, so that a refused connection raises
                connections.append(self.connect())
            threads = [
                threading.Thread(target=claimer, args=(index, connection), daemon=True)
                for index, connection in enumerate(connections)
            ]
            for thread in threads:
                thread.start()
            ready.wait(VISIBLE_TIMEOUT_SECONDS)
            started = time.perf_counter()
            for thread in threads:
                thread.join()
        finally:
            for connection in connections:
                connection.close()
        drain.seconds = last[0] - started
        return drain


class RawSQLite(RawQueue):
    """Plain sqlite3 (WAL, synchronous=FULL): ``BEGIN IMMEDIATE``, select, update, commit."""

    SELECT = (
        "SELECT id FROM jobs WHERE status = 'pending' AND run_at <= ? "
        "ORDER BY priority DESC, run_at, id LIMIT ?"
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        #: SQLite runs one writer at a time: the threads take turns here rather than in
        #: SQLite's busy handler, whose sleeps made the reference slower, not fairer.
        self.turns = threading.Lock()
        with closing(self.connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(
                "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "priority INTEGER NOT NULL, run_at REAL NOT NULL, claimed_by TEXT);"
                "CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id) "
                "WHERE status = 'pending';"
            )

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            isolation_level=None,
            timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            check_same_thread=False,
        )
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def seed(self, count: int) -> list[str]:
        now = time.time()
        rows = [(str(uuid4()), now - (count - i) / 1e6) for i in range(count)]
        with closing(self.connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("DELETE FROM jobs")
            connection.executemany(
                "INSERT INTO jobs (id, status, priority, run_at) VALUES (?, 'pending', 0, ?)", rows
            )
            connection.execute("COMMIT")
            connection.execute("ANALYZE")
        return [row[0] for row in rows]

    def claim(self, connection: sqlite3.Connection, worker: str, limit: int) -> list[str]:
        with self.turns:
            return self._claim(connection, worker, limit)

    def _claim(self, connection: sqlite3.Connection, worker: str, limit: int) -> list[str]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            ids = [row[0] for row in connection.execute(self.SELECT, (time.time(), limit))]
            if ids:
                marks = ", ".join("?" * len(ids))
                connection.execute(
                    f"UPDATE jobs SET status = 'processing', claimed_by = ? WHERE id IN ({marks})",
                    (worker, *ids),
                )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return ids


class RawPostgres(RawQueue):
    """Plain psycopg 3 (autocommit): one ``UPDATE ... FOR UPDATE SKIP LOCKED`` per claim."""

    CLAIM = (
        "UPDATE jobs SET status = 'processing', claimed_by = %s WHERE id IN ("
        "SELECT id FROM jobs WHERE status = 'pending' AND run_at <= now() "
        "ORDER BY priority DESC, run_at, id FOR UPDATE SKIP LOCKED LIMIT %s) RETURNING id"
    )

    def __init__(self, url: str) -> None:
        self.url = url
        with closing(self.connect()) as connection:
            connection.execute(
                "CREATE TABLE jobs (id uuid PRIMARY KEY, status text NOT NULL, "
                "priority integer NOT NULL, run_at timestamptz NOT NULL, claimed_by text)"
            )
            connection.execute(
                "CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id) "
                "WHERE status = 'pending'"
            )

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def seed(self, count: int) -> list[str]:
        now = datetime.now(UTC)
        rows = [(uuid4(), now - timedelta(microseconds=count - i)) for i in range(count)]
        with closing(self.connect()) as connection:
            connection.execute("TRUNCATE jobs")
            copy_rows = "COPY jobs (id, status, priority, run_at) FROM STDIN"
            with connection.cursor().copy(copy_rows) as copy:
                for job_id, run_at in rows:
                    copy.write_row((job_id, "pending", 0, run_at))
            connection.execute("VACUUM ANALYZE jobs")
        return [str(job_id) for job_id, _ in rows]

    def claim(self, connection: psycopg.Connection[Any], worker: str, limit: int) -> list[str]:
        return [str(row[0]) for row in connection.execute(self.CLAIM, (worker, limit))]


# -- the HTTP side --------------------------------------------------------------------------


def http_json(server: Server, method: str, path: str, body: Any = None) -> Any:
    """One blocking request as the admin; the decoded answer (raises on an HTTP error)."""
    request = urllib.request.Request(
        f"http://{HOST}:{server.port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        return json.load(response)


def seed(ledger: JobLedger, owner: str, count: int) -> list[str]:
    """Creates ``count`` due jobs through the ledger, the last one after all the others."""

    def create(index: int) -> str:
        result = ledger.create_job(job_type=DRAIN_TYPE, data={"n": index}, actor=owner)
        return str(result.job.id)

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        ids = list(pool.map(create, range(count - 1)))
    return [*ids, create(count - 1)]


def wait_visible(server: Server, last_id: str) -> None:
    """Waits until the server's list shows ``last_id`` as its newest pending drain job (the view
    applies the log in order, so it then shows every job created before it)."""
    path = f"/api/v1/jobs?status=pending&type={DRAIN_TYPE}&limit=1"
    deadline = time.monotonic() + VISIBLE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        items = http_json(server, "GET", path)["items"]
        if items and items[0]["id"] == last_id:
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"the server's view did not show job {last_id} within {VISIBLE_TIMEOUT_SECONDS:.0f} s"
    )


async def timed(
    connection: Connection, method: str, path: str, body: Any = None
) -> tuple[int, bytes, float, float]:
    """One request: status, body, and when it was sent and answered (perf_counter)."""
    started = time.perf_counter()
    status, content = await asyncio.wait_for(
        connection.request(method, path, body), REQUEST_TIMEOUT_SECONDS
    )
    return status, content, started, time.perf_counter()


async def drain_http(server: Server, batch: int, jobs: int, seconds: float) -> Drain:
    """32 claimers claiming ``batch`` at a time until ``jobs`` are claimed (or time is up)."""
    drain = Drain(batch, jobs)
    connections = [Connection(server.port, server.token) for _ in range(CLAIMERS)]
    deadline = time.monotonic() + seconds
    last = [0.0]

    async def claimer(index: int, connection: Connection) -> None:
        body = {"limit": batch, "leaseSeconds": DRAIN_LEASE_SECONDS, "worker": f"bench-{index}"}
        while not drain.done and time.monotonic() < deadline:
            try:
                status, content, sent, answered = await timed(
                    connection, "POST", "/api/v1/jobs/claim", body
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                await connection.close()
                drain.error(repr(error))
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            if status != 200:
                drain.error(f"{status}: {content[:200]!r}")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            ids = [item["id"] for item in orjson.loads(content)["items"]]
            drain.record(ids, (answered - sent) * 1000)
            if ids:
                last[0] = answered
            elif drain.finishing:
                return

    for connection in connections:  # connect before the clock starts
        await connection.request("GET", "/api/health")
    server_cpu, driver_cpu = process_cpu_seconds(server.process.pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(claimer(i, c) for i, c in enumerate(connections)))
    drain.seconds = last[0] - started
    drain.server_cpu = process_cpu_seconds(server.process.pid) - server_cpu
    drain.driver_cpu = time.process_time() - driver_cpu
    for connection in connections:
        await connection.close()
    return drain


async def wakeups(server: Server, samples: int) -> tuple[list[float], list[float]]:
    """Wake-up latencies (create's 201 to the waiting claim's answer) and create latencies,
    in ms."""
    claimer = Connection(server.port, server.token)
    creator = Connection(server.port, server.token)
    claim = {
        "types": [WAKEUP_TYPE],
        "limit": 1,
        "leaseSeconds": DRAIN_LEASE_SECONDS,
        "waitSeconds": WAKEUP_WAIT_SECONDS,
        "worker": "bench-waiter",
    }
    wake: list[float] = []
    creates: list[float] = []
    early = 0
    try:
        for number in range(samples):
            waiting = asyncio.create_task(timed(claimer, "POST", "/api/v1/jobs/claim", claim))
            await asyncio.sleep(0.05 + random.random() * 0.05)  # the claim is now waiting
            if waiting.done():
                raise RuntimeError(f"a waiting claim answered before any job: {waiting.result()}")
            status, content, sent, created = await timed(
                creator, "POST", "/api/v1/jobs", {"type": WAKEUP_TYPE, "data": {"n": number}}
            )
            if status != 201:
                raise RuntimeError(f"create answered {status}: {content[:300]!r}")
            job_id = orjson.loads(content)["id"]
            claim_status, claimed, _, answered = await waiting
            items = orjson.loads(claimed)["items"] if claim_status == 200 else []
            if [item["id"] for item in items] != [job_id]:
                raise RuntimeError(f"the waiting claim answered {claim_status}: {claimed[:300]!r}")
            early += answered < created
            wake.append(max(0.0, answered - created) * 1000)
            creates.append((created - sent) * 1000)
    finally:
        await claimer.close()
        await creator.close()
    print(f"claims: wake-up: {early} of {samples} claims answered before the create's 201")
    return wake, creates


async def rescues(server: Server, samples: int) -> list[float]:
    """Rescue delays (s): from each lease's expiry to a GET showing the job ``retrying``."""
    main = Connection(server.port, server.token)
    try:
        for number in range(samples):
            status, content = await main.request(
                "POST", "/api/v1/jobs", {"type": RESCUE_TYPE, "data": {"n": number}}
            )
            if status != 201:
                raise RuntimeError(f"create answered {status}: {content[:300]!r}")
        claim = {
            "types": [RESCUE_TYPE],
            "limit": 1,
            "leaseSeconds": RESCUE_LEASE_SECONDS,
            "worker": "bench-crashed",
        }
        leases: list[tuple[str, float]] = []
        for _ in range(samples):
            status, content = await main.request("POST", "/api/v1/jobs/claim", claim)
            items = orjson.loads(content)["items"] if status == 200 else []
            if len(items) != 1:
                raise RuntimeError(f"a rescue claim answered {status}: {content[:300]!r}")
            expires = datetime.fromisoformat(items[0]["leaseExpiresAt"]).timestamp()
            leases.append((items[0]["id"], expires))
            await asyncio.sleep(RESCUE_STAGGER_SECONDS)
    finally:
        await main.close()
    return list(await asyncio.gather(*(watch(server, *lease) for lease in leases)))


async def watch(server: Server, job_id: str, expires: float) -> float:
    """Polls the job from just before its lease expires until it shows ``retrying``."""
    connection = Connection(server.port, server.token)
    try:
        await asyncio.sleep(max(0.0, expires - time.time() - RESCUE_LEAD_SECONDS))
        while time.time() < expires + RESCUE_TIMEOUT_SECONDS:
            status, content = await connection.request("GET", f"/api/v1/jobs/{job_id}")
            seen = time.time()
            job = orjson.loads(content) if status == 200 else {}
            if job.get("status") == "retrying":
                return seen - expires
            if job.get("status") != "processing":
                raise RuntimeError(f"job {job_id} answered {status}: {content[:300]!r}")
            await asyncio.sleep(RESCUE_POLL_SECONDS)
    finally:
        await connection.close()
    raise RuntimeError(f"job {job_id} was not rescued within {RESCUE_TIMEOUT_SECONDS:.0f} s")


def run_async(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# -- one store ------------------------------------------------------------------------------


@dataclass
class StoreRun:
    """Everything measured on one store."""

    drains: dict[int, tuple[Drain, Drain]] = field(default_factory=dict)  # batch: (http, raw)
    wake: list[float] = field(default_factory=list)
    creates: list[float] = field(default_factory=list)
    rescue: list[float] = field(default_factory=list)


@contextmanager
def stores(store: str) -> Iterator[tuple[str, RawQueue, Path]]:
    """The jobledger store's URL, the raw reference on its own scratch store, a directory."""
    with ExitStack() as stack:
        directory = stack.enter_context(sqlite_directory())
        if store == "sqlite":
            url = f"sqlite:///{directory / 'jobledger.db'}"
            raw: RawQueue = RawSQLite(directory / "raw.db")
        else:
            url = stack.enter_context(postgres_database())
            raw = RawPostgres(stack.enter_context(postgres_database()))
        yield url, raw, directory


def measure_store(store: str, plan: Plan) -> StoreRun:
    outcome = StoreRun()
    with stores(store) as (url, raw, directory), ExitStack() as stack:
        folder = directory / "server"
        folder.mkdir()
        server = start_server("jobledger", url, folder, secrets.token_urlsafe(48))
        stack.callback(stop_server, server)
        owner = http_json(server, "GET", "/api/v1/auth/me")["id"]
        ledger = stack.enter_context(closing(JobLedger(env=Store.from_url(url).ledger_env())))
        for index, batch in enumerate(BATCHES):
            sides: dict[str, Drain] = {}
            for side in ("raw", "http") if index % 2 == 0 else ("http", "raw"):
                started = time.perf_counter()
                if side == "raw":
                    sides[side], seeded = raw.drains(batch, plan.jobs, plan.drain_seconds)
                else:
                    ids = seed(ledger, owner, plan.jobs)
                    wait_visible(server, ids[-1])
                    setup = time.perf_counter() - started
                    sides[side] = run_async(
                        drain_http(server, batch, plan.jobs, plan.drain_seconds)
                    )
                    seeded = ids
                    print(f"claims: {store}: seeded {plan.jobs:,} jobs in {setup:.1f} s")
                check(store, side, sides[side], seeded)
            outcome.drains[batch] = (sides["http"], sides["raw"])
        outcome.wake, outcome.creates = run_async(wakeups(server, plan.wakeups))
        outcome.rescue = run_async(rescues(server, plan.rescues))
        if server.process.poll() is not None:
            raise RuntimeError("the server died during the benchmark")
    return outcome


def check(store: str, side: str, drain: Drain, seeded: list[str]) -> None:
    """Prints the drain; raises on a double claim or too many errors, warns when unfinished."""
    latencies = drain.latencies
    print(
        f"claims: {store} {side} batch {drain.batch}: {len(drain.ids):,} jobs in "
        f"{drain.seconds:.2f} s ({drain.rate:,.0f} jobs/s), {len(latencies):,} claims, p50 "
        f"{percentile(latencies, 0.5):.1f} ms p99 {percentile(latencies, 0.99):.1f} ms, "
        f"{drain.short} short, {drain.errors} errors"
        + (
            f"; CPU: server {drain.server_cpu:.1f} s, driver {drain.driver_cpu:.1f} s"
            if side == "http"
            else ""
        )
    )
    if drain.samples:
        print(f"claims: {store} {side} batch {drain.batch}: unexpected answers: {drain.samples}")
    if drain.doubles:
        raise RuntimeError(
            f"{store} {side} batch {drain.batch}: {drain.doubles} jobs were handed out twice"
        )
    if drain.errors > MAX_ERROR_FRACTION * max(len(latencies), 1):
        raise RuntimeError(
            f"{store} {side} batch {drain.batch}: {drain.errors} unexpected answers to "
            f"{len(latencies):,} claims; the figures would mislead"
        )
    missing = len(set(seeded) - set(drain.ids))
    if missing or not drain.done:
        print(
            f"claims: {store} {side} batch {drain.batch}: UNFINISHED: {missing} of "
            f"{drain.jobs:,} jobs never claimed"
        )


def figures_for(store: str, plan: Plan, outcome: StoreRun) -> list[Figure]:
    figures: list[Figure] = []
    for batch, (http, raw) in outcome.drains.items():
        prefix = f"claims {store} batch {batch}:"
        target = " (target >= 0.5x)" if batch == 10 else ""
        figures += [
            Figure.compare(
                f"{prefix} jobs claimed/s, {CLAIMERS} claimers, {plan.jobs:,} jobs a drain{target}",
                http.rate,
                raw.rate,
                "jobs/s",
            ),
            Figure.compare(
                f"{prefix} claim p50",
                percentile(http.latencies, 0.5),
                percentile(raw.latencies, 0.5),
                "ms",
            ),
            Figure.compare(
                f"{prefix} claim p99",
                percentile(http.latencies, 0.99),
                percentile(raw.latencies, 0.99),
                "ms",
            ),
            Figure.compare(f"{prefix} double claims (target 0)", http.doubles, raw.doubles, "jobs"),
            Figure.compare(
                f"{prefix} short claims per claim",
                http.short_per_claim,
                raw.short_per_claim,
                "claims",
            ),
        ]
    prefix = f"claims {store}:"
    figures += [
        Figure.compare(
            f"{prefix} waiting-claim wake-up p50 (ref: create)",
            percentile(outcome.wake, 0.5),
            percentile(outcome.creates, 0.5),
            "ms",
        ),
        Figure.compare(
            f"{prefix} waiting-claim wake-up p99 (target <= 50 ms; ref: create)",
            percentile(outcome.wake, 0.99),
            percentile(outcome.creates, 0.99),
            "ms",
        ),
        Figure.compare(
            f"{prefix} rescue delay after lease expiry p50 (ref: 2 s target)",
            percentile(outcome.rescue, 0.5),
            RESCUE_TARGET_SECONDS,
            "s",
        ),
        Figure.compare(
            f"{prefix} rescue delay after lease expiry p99 (ref: 2 s target)",
            percentile(outcome.rescue, 0.99),
            RESCUE_TARGET_SECONDS,
            "s",
        ),
    ]
    return figures


def run(quick: bool) -> list[Figure]:
    plan = QUICK if quick else FULL
    figures: list[Figure] = []
    for store in ("sqlite", "postgresql"):
        started = time.perf_counter()
        try:
            outcome = measure_store(store, plan)
        except PostgresUnavailable as error:
            print(f"claims: PostgreSQL skipped: {error}")
            continue
        print(f"claims: {store}: measured in {time.perf_counter() - started:.0f} s")
        figures += figures_for(store, plan, outcome)
    return figures
