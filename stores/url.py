"""Store selection: one URL (``JOBLEDGER_DATABASE_URL``) to the eventsourcing library's settings.

Supported forms::

    sqlite:///relative/path.db     a file, relative to the working directory (the default)
    sqlite:////absolute/path.db    a file, absolute path
    postgresql://user[:password]@host[:port]/dbname
    memory://                      in-process, nothing kept (tests and demos)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from eventsourcing.utils import get_topic

from stores.memory import TimeIndexedPOPOFactory
from stores.postgres import (
    EVENTS_TABLE,
    FailFastPostgresFactory,
    PostgresTimeIndexedRecorder,
    postgres_has_table,
)
from stores.sqlite import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    DurableSQLiteFactory,
    SQLiteTimeIndexedRecorder,
    create_private,
)

DEFAULT_DATABASE_URL = "sqlite:///var/jobledger.db"
#: Seconds to wait for PostgreSQL to accept a connection, for the event store and the views.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 2
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
        """The eventsourcing library's settings for this store (its classes named by topic,
        the library's way of choosing them)."""
        if self.kind == "memory":
            return {"PERSISTENCE_MODULE": get_topic(TimeIndexedPOPOFactory)}
        if self.kind == "sqlite":
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)
            return {
                "PERSISTENCE_MODULE": get_topic(DurableSQLiteFactory),
                "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteTimeIndexedRecorder),
                "SQLITE_DBNAME": str(self.path),
                "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_TIMEOUT_SECONDS),
                "WRITE_TIMEOUT_SECONDS": str(SQLITE_BUSY_TIMEOUT_SECONDS),
            }
        return {
            "PERSISTENCE_MODULE": get_topic(FailFastPostgresFactory),
            "APPLICATION_RECORDER_TOPIC": get_topic(PostgresTimeIndexedRecorder),
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_CONNECT_TIMEOUT": str(POSTGRES_CONNECT_TIMEOUT_SECONDS),
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
        }

    def exists(self) -> bool:
        """Whether a store is there already: the SQLite file, or the PostgreSQL database with
        the ledger's events table (memory: never). Opening the ledger creates it otherwise;
        commands that only read ask this first, so that they don't invent an empty store."""
        if self.kind == "sqlite":
            assert self.path is not None
            return self.path.is_file()
        if self.kind == "postgresql":
            return postgres_has_table(self.postgres_conninfo(), EVENTS_TABLE)
        return False

    def postgres_conninfo(self) -> dict[str, Any]:
        """psycopg's connection arguments for this PostgreSQL store (the views' connections)."""
        if self.kind != "postgresql":
            raise ValueError(f"{self.describe()} is not a PostgreSQL store")
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
        }

    def describe(self) -> str:
        """A human-readable name of the store, without secrets."""
        if self.kind == "sqlite":
            return f"sqlite:{self.path}"
        if self.kind == "postgresql":
            return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"
        return "memory"
