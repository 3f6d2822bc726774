"""The SQLite store: durable commits, reads beside a blocked writer, and one deadline per command
while another process holds the file's write lock."""

from __future__ import annotations

import gc
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from domain.errors import LedgerUnavailableError
from domain.ledger import JobLedger
from stores import Store
from stores.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from tests.eventually import eventually


def test_sqlite_store_is_durable_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "events.db"
    ledger = JobLedger(env=Store.from_url(f"sqlite:///{path}").ledger_env())
    try:
        job_id = ledger.create_job(job_type="t", actor="a").job.id
        assert path.exists()
        with ledger.factory.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 2
        pool = ledger.factory.datastore.pool  # type: ignore[attr-defined]
        writer = pool.acquire_writer()
        try:
            assert writer.sqlite_connection.execute("PRAGMA synchronous").fetchone()[0] == 2
        finally:
            pool.release_writer()
    finally:
        ledger.close()
    assert writer.closed
    reopened = JobLedger(env=Store.from_url(f"sqlite:///{path}").ledger_env())
    try:
        assert reopened.get_job(job_id).job_type == "t"
    finally:
        reopened.close()


def test_sqlite_reads_never_queue_behind_a_writer_waiting_for_the_file_lock(
    tmp_path: Path,
) -> None:
    """In WAL mode a read never needs the write lock: while another process holds it and
    commands wait their busy timeout for it (one for the file, the next for its turn), reads
    of the same ledger answer at once."""
    path = tmp_path / "events.db"
    ledger = JobLedger(env=Store.from_url(f"sqlite:///{path}").ledger_env())
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        job_id = ledger.create_job(job_type="t", actor="a").job.id
        holder.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(max_workers=2) as pool:
            waiting = [
                pool.submit(ledger.create_job, job_type="blocked", actor="a") for _ in range(2)
            ]
            eventually(lambda: ledger.writes_in_flight() == 2, what="both commands writing")
            started = time.monotonic()
            assert ledger.get_job(job_id).job_type == "t"
            assert ledger.head() >= 1
            assert time.monotonic() - started < 1.0
            assert not any(command.done() for command in waiting), "the writers did not wait"
            holder.rollback()
            for command in waiting:
                assert command.result(SQLITE_BUSY_TIMEOUT_SECONDS + 5).job.job_type == "blocked"
    finally:
        holder.close()
        ledger.close()


def test_sqlite_commands_queued_behind_a_locked_file_each_wait_one_timeout(
    tmp_path: Path,
) -> None:
    """While another process holds the write lock, commands arriving one after another each
    fail after one write timeout from their own arrival, however many queued before them
    (they used to wait a timeout for each batch ahead, then their own)."""
    path = tmp_path / "events.db"
    timeout = 1.0
    env = {
        **Store.from_url(f"sqlite:///{path}").ledger_env(),
        "SQLITE_LOCK_TIMEOUT": "1",
        JobLedger.WRITE_TIMEOUT_SECONDS: str(timeout),
    }
    ledger = JobLedger(env=env)
    holder = sqlite3.connect(path, isolation_level=None)

    def create() -> float:
        arrived = time.monotonic()
        with pytest.raises(LedgerUnavailableError):
            ledger.create_job(job_type="blocked", actor="a")
        return time.monotonic() - arrived

    try:
        ledger.create_job(job_type="t", actor="a")
        holder.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(max_workers=4) as pool:
            waits = []
            for _ in range(4):
                waits.append(pool.submit(create))
                time.sleep(0.3)
            seconds = [wait.result(30) for wait in waits]
        assert all(timeout - 0.1 <= s < timeout + 0.5 for s in seconds), seconds
        holder.rollback()
        assert ledger.create_job(job_type="after", actor="a").job.job_type == "after"
    finally:
        holder.close()
        ledger.close()


#: The writer's wait for the held lock in the garbage test.
BUSY_SECONDS = 8


def _fails_unavailable(ledger: JobLedger) -> bool:
    """Runs a command that fails for a locked store, and drops its error (it becomes garbage)."""
    try:
        ledger.create_job(job_type="fails", actor="a")
    except LedgerUnavailableError:
        return True
    return False


def test_collecting_a_failed_writes_garbage_never_waits_for_the_next_writer(
    tmp_path: Path,
) -> None:
    """A failed insert leaves its cursor in a reference cycle (through the traceback). Were it
    still open, the garbage collector, on any thread, would reset it on the writer connection
    and so wait, holding the GIL, for a command waiting inside SQLite for the file lock: the
    whole process stalled (seen as 503s after two busy timeouts). The collection is compared
    with the writer's wait, not with a fixed time: a stalled collection lasts until the writer
    gives up (most of ``BUSY_SECONDS``), a sound one however long a collection takes on a loaded
    machine, but far less than that."""
    path = tmp_path / "events.db"
    env = {
        **Store.from_url(f"sqlite:///{path}").ledger_env(),
        "SQLITE_LOCK_TIMEOUT": str(BUSY_SECONDS),
        JobLedger.WRITE_TIMEOUT_SECONDS: str(BUSY_SECONDS),
    }
    ledger = JobLedger(env=env)
    holder = sqlite3.connect(path, isolation_level=None)
    gc.disable()
    try:
        ledger.create_job(job_type="t", actor="a")
        holder.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(_fails_unavailable, ledger).result(30)
            waiting = pool.submit(ledger.create_job, job_type="waits", actor="a")
            eventually(lambda: ledger.writes_in_flight() == 1, what="the next command writing")
            started = time.monotonic()
            gc.collect()
            collected_in = time.monotonic() - started
            assert not waiting.done(), "the command did not wait for the lock"
            with pytest.raises(LedgerUnavailableError):
                waiting.result(30)
        assert collected_in < BUSY_SECONDS / 2, (
            f"gc.collect() took {collected_in:.1f} s: it waited for the writer"
        )
    finally:
        gc.enable()
        holder.close()
        ledger.close()
