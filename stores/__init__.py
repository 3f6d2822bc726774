"""Persistence adapters: store URLs, the SQLite and PostgreSQL pools, the recorders we extend.

Everything on the write side that knows sqlite3 or psycopg lives here; ``domain`` is handed the
environment that ``Store.ledger_env()`` makes and never imports this package.
"""

from stores.url import DEFAULT_DATABASE_URL, Store, StoreURLError

__all__ = ["DEFAULT_DATABASE_URL", "Store", "StoreURLError"]
