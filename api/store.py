"""Store selection: one URL (``JOBLEDGER_DATABASE_URL``) to the eventsourcing library's settings.

Supported forms::

    sqlite:///relative/path.db     a file, relative to the working directory (the default)
    sqlite:////absolute/path.db    a file, absolute path
    postgresql://user[:password]@host[:port]/dbname
    memory://                      in-process, nothing kept (tests and demos)
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    InterfaceError,
)
from eventsourcing.postgres import ConnectionPool, PostgresFactory
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import Environment

from projections.failfast import RECONNECT_SECONDS, FailFast

DEFAULT_DATABASE_URL = "sqlite:///var/jobledger.db"
SQLITE_BUSY_TIMEOUT_SECONDS = 5
SQLITE_STATEMENT_CACHE = 128
#: Connections kept open: one per request thread (anyio's pool has 40), so that concurrent
#: reads reuse connections instead of opening and closing one each (the library keeps 5) ...
SQLITE_POOL_SIZE = 40
#: ... and how many more may open for a burst beyond that, closed when given back.
SQLITE_POOL_OVERFLOW = 10
SUPPORTED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "postgresql://user[:password]@host[:port]/dbname, memory://"
)


class StoreURLError(ValueError):
    """Raised when JOBLEDGER_DATABASE_URL is malformed or names an unsupported store."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(
            f"JOBLEDGER_DATABASE_URL {url!r} {problem}. Supported forms: {SUPPORTED_FORMS}."
        )


@dataclass(frozen=True)
class Store:
    """Where the events live."""

    kind: Literal["memory", "sqlite", "postgresql"]
    #: The SQLite file (sqlite only).
    path: Path | None = None
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""

    @classmethod
    def from_url(cls, url: str) -> Store:
        """Parses a database URL, or raises StoreURLError saying what is wrong."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise StoreURLError(url, f"is malformed ({error})") from None
        if parts.query or parts.fragment:
            raise StoreURLError(url, "must not have a query or fragment")
        if parts.scheme == "memory":
            if parts.netloc or parts.path:
                raise StoreURLError(url, "must be exactly memory://")
            return cls("memory")
        if parts.scheme == "sqlite":
            return cls._sqlite(url, parts.netloc, parts.path)
        if parts.scheme in ("postgresql", "postgres"):
            dbname = unquote(parts.path.lstrip("/"))
            if not parts.hostname or not dbname or "/" in dbname:
                raise StoreURLError(url, "must name a host and a database")
            return cls(
                "postgresql",
                host=parts.hostname,
                port=port or 5432,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=dbname,
            )
        raise StoreURLError(url, f"has an unsupported scheme {parts.scheme!r}")

    @classmethod
    def _sqlite(cls, url: str, netloc: str, path: str) -> Store:
        if netloc:
            raise StoreURLError(url, "must have three slashes after sqlite: (no host)")
        relative = path[1:]
        if not relative or relative.endswith("/"):
            raise StoreURLError(url, "must name a database file")
        if ":memory:" in relative:
            raise StoreURLError(url, "is an in-memory SQLite database; use memory:// instead")
        return cls("sqlite", path=Path(unquote(relative)))

    def ledger_env(self) -> dict[str, str]:
        """The eventsourcing library's settings for this store."""
        if self.kind == "memory":
            return {"PERSISTENCE_MODULE": "api.timeindex:TimeIndexedPOPOFactory"}
        if self.kind == "sqlite":
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
            return {
                "PERSISTENCE_MODULE": f"{__name__}:DurableSQLiteFactory",
                "APPLICATION_RECORDER_TOPIC": "api.timeindex:SQLiteTimeIndexedRecorder",
                "SQLITE_DBNAME": str(self.path),
                "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_TIMEOUT_SECONDS),
                "WRITE_TIMEOUT_SECONDS": str(SQLITE_BUSY_TIMEOUT_SECONDS),
            }
        return {
            "PERSISTENCE_MODULE": f"{__name__}:FailFastPostgresFactory",
            "APPLICATION_RECORDER_TOPIC": "api.timeindex:PostgresTimeIndexedRecorder",
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_CONNECT_TIMEOUT": "2",
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
        }

    def describe(self) -> str:
        """A human-readable name of the store, without secrets."""
        if self.kind == "sqlite":
            return f"sqlite:{self.path}"
        if self.kind == "postgresql":
            return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"
        return "memory"


def _create_private(path: Path) -> None:
    """Creates the database file readable by its owner only (it holds password hashes);
    SQLite gives its -wal and -shm files the same permissions."""
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


class DurableSQLiteConnection(SQLiteConnection):
    """The library's SQLite connection, with its sqlite3 connection in reach."""

    @property
    def sqlite_connection(self) -> sqlite3.Connection:
        return self._sqlite_conn


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    """Connections that sync every commit to disk, so an acknowledged command survives a crash,
    and reads that never queue behind writers.

    The library's pool lets one caller at a time ask for a connection, and a writer waits for
    the in-process write lock inside that turn: while another process holds the file's write
    lock, every read queued behind two waiting commands for up to the pool timeout. In WAL mode
    a read needs no lock at all, so the turn is shared by as many callers as there are
    connections; commands still take turns for the write lock.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._get_semaphore = threading.Semaphore(self.pool_size + self.max_overflow)
        self._writer: DurableSQLiteConnection | None = None
        self._writer_busy_ms = 0

    def acquire_writer(self, deadline: float | None = None) -> DurableSQLiteConnection:
        """The pool's own writer connection, under the pool's writer lock (release it with
        :meth:`release_writer`): the way a command's events are written. Waiting for the lock,
        and then for the file's write lock, ends at ``deadline`` (a ``time.monotonic()``
        instant) when one is given, else after the busy timeout.

        Getting a connection from the pool and giving it back (fair queueing, usage bookkeeping,
        two locks and a condition) cost about 10 us a command, all of it for what the writer lock
        alone decides: whose turn it is to write.
        """
        if self._closed:
            raise ConnectionPoolClosedError("Pool is closed")
        if not self._writer_lock.acquire(timeout=min(self.pool_timeout, self._left(deadline))):
            raise ConnectionUnavailableError("Timed out waiting for return of writer")
        try:
            if self._writer is None or self._writer.closed:
                self._writer = self._create_connection()
                self._writer_busy_ms = round(self._busy_seconds() * 1000)
            busy_ms = round(self._left(deadline) * 1000)
            if busy_ms != self._writer_busy_ms:
                self._writer.sqlite_connection.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
                self._writer_busy_ms = busy_ms
        except BaseException:
            self._writer_lock.release()
            raise
        return self._writer

    def _busy_seconds(self) -> float:
        return float(self.lock_timeout or SQLITE_BUSY_TIMEOUT_SECONDS)

    def _left(self, deadline: float | None) -> float:
        """How long a writer may wait from now: the busy timeout, or less when ``deadline``
        comes sooner."""
        if deadline is None:
            return self._busy_seconds()
        return min(self._busy_seconds(), max(0.0, deadline - time.monotonic()))

    def release_writer(self) -> None:
        self._writer_lock.release()

    def close(self) -> None:
        super().close()
        if self._writer is not None:
            self._writer.close()

    def _create_connection(self) -> DurableSQLiteConnection:
        """The library's connection, with a statement cache: it asks for ``True`` statements,
        that is one, so a command compiled its BEGIN and INSERT again each time."""
        try:
            connection = sqlite3.connect(
                self.db_name,
                timeout=self.lock_timeout or SQLITE_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=SQLITE_STATEMENT_CACHE,
                uri=True,
            )
        except (sqlite3.Error, TypeError) as error:
            raise InterfaceError(error) from error
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.row_factory = sqlite3.Row
        self.is_journal_mode_wal = True
        return DurableSQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


class DurableSQLiteFactory(SQLiteFactory):
    """The library's SQLite factory (WAL mode) with durable connections."""

    def __init__(self, env: Environment | dict[str, Any] | None):
        super().__init__(env)
        plain = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=plain.db_name,
            lock_timeout=plain.lock_timeout,
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_OVERFLOW,
        )
        plain.close()


class FailFastConnectionPool(FailFast, ConnectionPool[Any]):
    """The event store's pool: fails fast while PostgreSQL is unreachable, so the API answers
    503 promptly, and recovers within a second or so (``projections.failfast``)."""


class FailFastPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory, with a ``FailFastConnectionPool`` (same arguments)."""

    def __init__(self, env: Environment | dict[str, Any] | None):
        super().__init__(env)
        plain = self.datastore.pool
        self.datastore.pool = FailFastConnectionPool(
            get_password_func=plain.get_password_func,
            connection_class=plain.connection_class,
            kwargs=plain.kwargs,
            min_size=plain.min_size,
            max_size=plain.max_size,
            open=False,
            configure=plain._configure,
            timeout=plain.timeout,
            max_waiting=plain.max_waiting,
            max_lifetime=plain.max_lifetime,
            check=plain._check,
            reconnect_timeout=RECONNECT_SECONDS,
        )
