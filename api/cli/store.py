"""How the command line opens the store: the one ``JOBLEDGER_DATABASE_URL`` names (default
``sqlite:///var/jobledger.db``, relative to the current folder), with small pools (a command is one
client, not a server).

Only ``serve`` and ``users create`` may create a store; every other command refuses (exit 2) when
there is none at that URL, rather than inventing an empty one and reporting on it.
"""

from __future__ import annotations

from api.settings import configured_store, database_url
from domain.ledger import JobLedger
from stores import Store

#: A command line process needs a connection or two, not a server's pool.
CLI_POOL = {"POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "4"}
#: Where the commands look for the store, for ``--help``.
WHERE_THE_STORE_IS = (
    "The store is the one JOBLEDGER_DATABASE_URL names (default sqlite:///var/jobledger.db, "
    "relative to the current folder)."
)


class NoStoreError(Exception):
    """Raised when a command that needs an existing store finds none at the configured URL."""

    def __init__(self, store: Store) -> None:
        super().__init__(
            f"no store at {store.describe()} (JOBLEDGER_DATABASE_URL={database_url()!r}); "
            "run the command where the store is, or set JOBLEDGER_DATABASE_URL to it"
        )


def open_store_ledger(*, create: bool = False) -> tuple[Store, JobLedger]:
    """The configured store and its ledger (close it, or use it in a ``with`` block). Raises
    StoreURLError for a malformed URL, NoStoreError when there is no store and ``create`` is
    false, and the store's own error when it cannot open."""
    store = configured_store()
    if not create and store.kind != "memory" and not store.exists():
        raise NoStoreError(store)
    return store, JobLedger(env={**store.ledger_env(), **CLI_POOL})


def open_ledger(*, create: bool = False) -> JobLedger:
    """The configured store's ledger (use it in a ``with`` block); see ``open_store_ledger``."""
    return open_store_ledger(create=create)[1]
