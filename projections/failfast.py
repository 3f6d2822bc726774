"""Connection pools that fail fast while PostgreSQL is unreachable and recover at once after.

psycopg_pool's defaults suit a database that is always there: a caller waits up to 30 s for a
connection, and a lost connection is retried with a delay that doubles up to minutes. During an
outage that turns every request into a long hang, and after it the pool may not try again for
seconds. Both the event store's pool (``api.store``) and the view's (``projections.postgres``)
use this mixin instead.
"""

from __future__ import annotations

from typing import Any

#: While the database is unreachable (the last connection attempt failed): how long a caller
#: waits for a pooled connection, so it gets its error (a 503) at once ...
UNREACHABLE_WAIT_SECONDS = 0.1
#: ... and how long the pool retries one lost connection before giving up on it; a later demand
#: then connects at once, so the pool is back within about a second of the database.
RECONNECT_SECONDS = 1.0


class FailFast:
    """Mixin for a ``psycopg_pool.ConnectionPool`` subclass (listed before it): short waits
    while the database is unreachable. Create the pool with ``reconnect_timeout=RECONNECT_SECONDS``.
    """

    unreachable = False

    def getconn(self, timeout: float | None = None) -> Any:
        if timeout is None and self.unreachable:
            timeout = UNREACHABLE_WAIT_SECONDS
        return super().getconn(timeout)  # type: ignore[misc]

    def _connect(self, timeout: float | None = None) -> Any:
        try:
            connection = super()._connect(timeout)  # type: ignore[misc]
        except Exception:
            self.unreachable = True
            raise
        self.unreachable = False
        return connection
