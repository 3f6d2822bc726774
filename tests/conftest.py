"""The ``backend`` fixture: every store-facing test runs on memory, SQLite and PostgreSQL.

PostgreSQL tests create a uniquely named database and drop it afterwards. When no server answers
they skip with a message, except under ``CI=true``, where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from domain.ledger import JobLedger
from stores import Store

BACKENDS = ("memory", "sqlite", "postgresql")
ADMIN_URL = os.environ.get(
    "JOBLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL is not answering at {ADMIN_URL}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true makes PostgreSQL tests mandatory)")
        pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database's URL, dropped on exit."""
    name = f"jobledger_test_{uuid.uuid4().hex[:16]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = Store.from_url(ADMIN_URL)
    try:
        yield f"postgresql://{base.user}@{base.host}:{base.port}/{name}"
    finally:
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after the test."""
    with postgres_database() as url:
        yield url


def backend_store(backend: str, directory: Path, stack: ExitStack) -> str:
    """The URL of a new, empty store of ``backend``: a PostgreSQL one is dropped when ``stack``
    closes, an SQLite one lives in ``directory``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{directory / 'events.db'}"
    return stack.enter_context(postgres_database())


@pytest.fixture(scope="module", params=BACKENDS)
def module_ledger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobLedger]:
    """One ledger per backend for a whole module of table-driven cases that each drive their
    own job (creating a PostgreSQL database per case would cost more than the case)."""
    with ExitStack() as stack:
        url = backend_store(request.param, tmp_path_factory.mktemp("module"), stack)
        ledger = JobLedger(env=Store.from_url(url).ledger_env())
        stack.callback(ledger.close)
        yield ledger


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def on_backends(*names: str) -> pytest.MarkDecorator:
    """Runs a test on these backends only (every test that takes ``backend`` or ``store_url``
    runs on all three unless it says otherwise), with the reason in its docstring."""
    unknown = set(names) - set(BACKENDS)
    assert not unknown, f"unknown backends {sorted(unknown)}; choose from {BACKENDS}"
    return pytest.mark.parametrize("backend", names)


#: For tests of the HTTP layer's own rules, which no store changes: one fast backend.
MEMORY_ONLY = on_backends("memory")


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL for an empty store of the current backend."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make_ledger(store_url: str) -> Iterator[object]:
    """Opens ledgers on the current store (several share it, like several processes)."""
    opened: list[JobLedger] = []

    def make() -> JobLedger:
        ledger = JobLedger(env=Store.from_url(store_url).ledger_env())
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger) -> JobLedger:  # type: ignore[no-untyped-def]
    return make_ledger()  # type: ignore[no-any-return]


from tests.served import api  # noqa: E402  (the served API fixture, for tests/worker and tests/streams)

__all__ = ["api"]
