"""JOBLEDGER_DATABASE_URL: every supported form, and clear refusals of the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from stores import Store, StoreURLError


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
