"""Faults under load: a real ``jobledger serve`` process, 32 clients, and the store failing.

1. ``kill -9`` of the server during a 32-client burst, 5 times per store (a SQLite file, a fresh
   PostgreSQL database); after each restart every acknowledged (2xx) command is in the store at
   its version, no aggregate has a version gap, and ``jobledger projections verify`` exits 0.
2. PostgreSQL: the server's connections are terminated (``pg_terminate_backend``, only this
   test database's backends on the shared server); and a private PostgreSQL instance (its own
   ``initdb`` folder and port) is stopped and restarted under load. Meanwhile the API answers 2xx
   or 503 with ``Retry-After``, never a 500, never a hang; within 10 s of the database coming
   back it serves writes and the read model is current again; nothing acknowledged is lost.
3. SQLite: another process holds a write transaction (``BEGIN IMMEDIATE``) on the events file.
   Commands answer 503 with ``Retry-After`` after the busy timeout, never a 500, reads still
   answer, and commands succeed again once it is released. Each command waits one busy timeout
   from its arrival, whatever it waits on (its turn for SQLite's single writer, then the file
   lock), so no answer takes longer than that (+2 s for the request's own way in and out).

Sizes, chosen to keep the whole module near 2 minutes on 2 shared cores: bursts of 32 clients,
each lifecycle 9 commands (create, start, 6 progress updates, complete); each kill lands after a
random 40-400 requests of its burst.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from stores import Store
from stores.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from tests.conftest import ADMIN_URL, on_backends
from tests.eventually import eventually
from tests.reliability.conftest import PrivatePostgres
from tests.reliability.serving import (
    ServeProcess,
    Traffic,
    admin_token,
    check_acknowledged,
    current,
    verify_projection,
)

KILLS = 5
CLIENTS = 32
SEED = 20_261_201
TERMINATIONS = 3
DOWN_SECONDS = 8.0
RECOVERY_SECONDS = 10.0
LOCKED_CLIENTS = 8
LOCKED_SECONDS = 8.0


@pytest.mark.slow
@on_backends("sqlite", "postgresql")
def test_kill_9_during_a_burst_loses_nothing_acknowledged(store_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    acks = []
    server = ServeProcess(store_url, tmp_path)
    try:
        token = admin_token(server.url)
        for kill in range(KILLS):
            traffic = Traffic(server.url, token, clients=CLIENTS, transport_errors_ok=True)
            with traffic:
                traffic.wait_for_requests(rng.randint(40, 400))
                server.kill()
            assert not traffic.outcomes.bad, traffic.outcomes.bad[:5]
            acks += traffic.outcomes.acks
            assert not server.unexpected_errors(), server.output()
            server = ServeProcess(store_url, tmp_path)
            events = check_acknowledged(store_url, acks)
            verify_projection(store_url)
            print(f"kill {kill + 1}: {traffic.outcomes.statuses}, {len(acks)} acks, "
                  f"{events} events")  # fmt: skip
    finally:
        server.stop()


def terminate_backends(store_url: str) -> int:
    """Terminates every backend connected to this store's database (and no other); returns how
    many."""
    dbname = Store.from_url(store_url).dbname
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return len(rows)


def assert_survived(server: ServeProcess, traffic: Traffic) -> None:
    outcomes = traffic.outcomes
    assert not outcomes.bad, outcomes.bad[:10]
    assert not server.unexpected_errors(), server.output()[-5000:]


@pytest.mark.slow
@on_backends("postgresql")
def test_terminated_connections_are_survived(store_url: str, tmp_path: Path) -> None:
    server = ServeProcess(store_url, tmp_path)
    try:
        token = admin_token(server.url)
        with Traffic(server.url, token, clients=CLIENTS, max_seconds=60) as traffic:
            traffic.wait_for_requests(100)
            for round_ in range(TERMINATIONS):
                assert terminate_backends(store_url) > 0
                traffic.wait_for_requests(100 * (round_ + 2))
            terminated_at = time.monotonic()
        recovered = eventually(lambda: current(server.url, token), RECOVERY_SECONDS,
                               what="a current read model")
        print(
            f"{traffic.outcomes.statuses}; current again {time.monotonic() - terminated_at:.1f} s"
            f" after the last termination (probe {recovered:.1f} s)"
        )
        assert_survived(server, traffic)
        check_acknowledged(store_url, traffic.outcomes.acks)
        verify_projection(store_url)
    finally:
        server.stop()


@pytest.mark.slow
def test_a_database_restart_is_survived(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    store_url = private_postgres.create_database("jobledger_faults")
    server = ServeProcess(store_url, tmp_path)
    try:
        token = admin_token(server.url)
        with Traffic(server.url, token, clients=CLIENTS, max_seconds=90) as traffic:
            traffic.wait_for_requests(100)
            private_postgres.stop("immediate")
            down_at = time.monotonic()
            before = traffic.outcomes.total()
            time.sleep(DOWN_SECONDS)
            during = traffic.outcomes.total() - before
            unavailable = len(traffic.outcomes.unavailable_seconds)
            private_postgres.start()
            recovered = eventually(lambda: current(server.url, token), RECOVERY_SECONDS,
                               what="a current read model")
        print(
            f"{traffic.outcomes.statuses}; {during} requests while down; current again "
            f"{recovered:.1f} s after the restart; 503s took up to "
            f"{max(traffic.outcomes.unavailable_seconds, default=0):.1f} s; slowest "
            f"{traffic.outcomes.slowest[0]:.1f} s at {traffic.outcomes.slowest[1] - down_at:.1f}"
            f" s after the stop"
        )
        assert unavailable > 0, "no request was answered 503 while the database was down"
        assert_survived(server, traffic)
        check_acknowledged(store_url, traffic.outcomes.acks)
        verify_projection(store_url)
    finally:
        server.stop()


HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.rollback()
print("released", flush=True)
"""


@pytest.mark.slow
@on_backends("sqlite")
def test_a_held_write_lock_gives_503_after_the_busy_timeout(store_url: str, tmp_path: Path) -> None:
    server = ServeProcess(store_url, tmp_path)
    holder = None
    try:
        token = admin_token(server.url)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            job = http.post("/api/v1/jobs", json={"type": "before"})
            assert job.status_code == 201, job.text
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLD_LOCK, str(Store.from_url(store_url).path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert holder.stdout is not None and holder.stdin is not None
            assert holder.stdout.readline().strip() == "locked"
            with Traffic(server.url, token, clients=LOCKED_CLIENTS, max_seconds=LOCKED_SECONDS,
                         timeout=30) as traffic:  # fmt: skip
                assert http.get(f"/api/v1/jobs/{job.json()['id']}").status_code == 200
                time.sleep(LOCKED_SECONDS)
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "released"
            released = eventually(lambda: current(server.url, token), RECOVERY_SECONDS,
                               what="a current read model")
        outcomes = traffic.outcomes
        print(
            f"{outcomes.statuses}; 503s took {min(outcomes.unavailable_seconds, default=0):.1f}"
            f"-{max(outcomes.unavailable_seconds, default=0):.1f} s; slowest "
            f"{outcomes.slowest[0]:.1f} s; current {released:.1f} s after the release"
        )
        assert outcomes.statuses["503"] >= LOCKED_CLIENTS
        assert set(outcomes.statuses) <= {"503", "bad"}
        assert_survived(server, traffic)
        assert min(outcomes.unavailable_seconds) >= SQLITE_BUSY_TIMEOUT_SECONDS - 0.5
        assert outcomes.slowest[0] < SQLITE_BUSY_TIMEOUT_SECONDS + 2
        check_acknowledged(store_url, outcomes.acks)
        verify_projection(store_url)
    finally:
        if holder is not None:
            holder.kill()
            holder.communicate(timeout=10)
        server.stop()
