"""JOBLEDGER_DATABASE_URL: every supported form, and clear refusals of the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.ledger import JobLedger
from stores import Store, StoreURLError
from tests.conftest import on_backends


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", Store("memory")),
        ("sqlite:///var/jobledger.db", Store("sqlite", path=Path("var/jobledger.db"))),
        ("sqlite:////srv/data/ledger.db", Store("sqlite", path=Path("/srv/data/ledger.db"))),
        (
            "postgresql://app:s%40cret@db.internal:6543/ledger",
            Store(
                "postgresql",
                host="db.internal",
                port=6543,
                user="app",
                password="s@cret",
                dbname="ledger",
            ),
        ),
        ("postgres://db/ledger", Store("postgresql", host="db", user="postgres", dbname="ledger")),
    ],
)
def test_supported_urls(url: str, expected: Store) -> None:
    assert Store.from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://root@localhost/db", "unsupported scheme"),
        ("sqlite://host/file.db", "three slashes"),
        ("sqlite:///", "must name a database file"),
        ("sqlite:///:memory:", "use memory://"),
        ("postgresql://localhost", "must name a host and a database"),
        ("postgresql://localhost:port/db", "malformed"),
        ("memory://somewhere", "exactly memory://"),
        ("sqlite:///a.db?mode=ro", "query"),
        ("just-a-path.db", "unsupported scheme"),
    ],
)
def test_unsupported_urls_fail_with_the_supported_forms(url: str, problem: str) -> None:
    with pytest.raises(StoreURLError) as raised:
        Store.from_url(url)
    assert problem in str(raised.value)
    assert "sqlite:///relative/path.db" in str(raised.value)
    assert "postgresql://" in str(raised.value) and "memory://" in str(raised.value)


def test_postgres_password_is_not_in_the_description() -> None:
    assert "s3cret" not in Store.from_url("postgresql://app:s3cret@db/ledger").describe()


@on_backends("sqlite", "postgresql")
def test_a_store_exists_once_a_ledger_has_opened_it(store_url: str) -> None:
    """The PostgreSQL database of ``store_url`` exists but is empty until a ledger creates its
    tables; the SQLite file does not exist until then."""
    store = Store.from_url(store_url)
    assert not store.exists()
    JobLedger(env=store.ledger_env()).close()
    assert store.exists()


def test_a_missing_postgres_database_is_no_store(postgres_url: str) -> None:
    base = Store.from_url(postgres_url)
    missing = Store("postgresql", host=base.host, port=base.port, user=base.user,
                    dbname="jobledger_test_does_not_exist")  # fmt: skip
    assert not missing.exists()
