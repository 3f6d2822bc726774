"""How the command line opens the store: the one JOBLEDGER_DATABASE_URL names, with small pools
(a command is one client, not a server)."""

from __future__ import annotations

from api.settings import configured_store
from domain.ledger import JobLedger
from stores import Store

#: A command line process needs a connection or two, not a server's pool.
CLI_POOL = {"POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "4"}


def open_store_ledger() -> tuple[Store, JobLedger]:
    """The configured store and its ledger (close it, or use it in a ``with`` block); raises
    StoreURLError for a malformed URL and the store's own error when it cannot open."""
    store = configured_store()
    return store, JobLedger(env={**store.ledger_env(), **CLI_POOL})


def open_ledger() -> JobLedger:
    """The configured store's ledger (use it in a ``with`` block)."""
    return open_store_ledger()[1]
