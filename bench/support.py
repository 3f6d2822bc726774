"""Shared benchmark plumbing: throwaway stores and alternating timing.

Not a benchmark itself (discovery only picks ``bench_*`` modules). Temporary SQLite files live in
a fresh directory under the system temp dir; PostgreSQL databases are named
``jobledger_bench_<random>`` and dropped ``WITH (FORCE)`` afterwards. The server is taken from
``JOBLEDGER_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from stores import Store

ADMIN_URL = os.environ.get(
    "JOBLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CONNECT_TIMEOUT_SECONDS = 3


class PostgresUnavailable(Exception):
    """Raised when the benchmark PostgreSQL server does not answer."""


@contextmanager
def sqlite_directory() -> Iterator[Path]:
    """A fresh directory for SQLite files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="jobledger_bench_") as directory:
        yield Path(directory)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (its URL), dropped afterwards; PostgresUnavailable if none."""
    name = f"jobledger_bench_{uuid.uuid4().hex[:16]}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = Store.from_url(ADMIN_URL)
    credentials = f"{base.user}:{base.password}" if base.password else base.user
    try:
        yield f"postgresql://{credentials}@{base.host}:{base.port}/{name}"
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _admin(statement: sql.Composed) -> None:
    try:
        connection = psycopg.connect(
            ADMIN_URL, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
    except psycopg.OperationalError as error:
        raise PostgresUnavailable(f"PostgreSQL is not answering at {ADMIN_URL}: {error}") from None
    with connection:
        connection.execute(statement)


@dataclass
class Contender:
    """One side of an alternating measurement: runs a chunk of work, returns operations done."""

    name: str
    work: Callable[[int], int]
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    operations: int = 0

    @property
    def rate(self) -> float:
        """Operations per second (wall clock) over every chunk this contender ran."""
        return self.operations / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_operation(self) -> float:
        """This process's CPU seconds per operation (excludes the database server's own CPU)."""
        return self.cpu_seconds / self.operations if self.operations else 0.0


def alternate(chunks: Sequence[int], contenders: Sequence[Contender]) -> None:
    """Runs every chunk on every contender, flipping their order each chunk, timing each run."""
    for index, chunk in enumerate(chunks):
        order = contenders if index % 2 == 0 else list(reversed(contenders))
        for contender in order:
            started, cpu_started = time.perf_counter(), time.process_time()
            operations = contender.work(chunk)
            contender.seconds += time.perf_counter() - started
            contender.cpu_seconds += time.process_time() - cpu_started
            contender.operations += operations
