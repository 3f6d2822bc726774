"""How the ledger meets its store: the store's failures and lost optimistic-concurrency races.

- ``store_errors()`` turns the store's own failures (not concurrency conflicts) into
  ``LedgerUnavailableError``, so no raw library error leaks out of the ledger.
- ``back_off(attempt)`` sleeps a short random time before retrying a command that lost a race,
  so several processes racing on one aggregate spread out instead of colliding again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.persistence import IntegrityError, PersistenceError

from domain.errors import LedgerUnavailableError

MAX_BACK_OFF_SECONDS = 0.05


@contextmanager
def store_errors() -> Iterator[None]:
    """Raises LedgerUnavailableError for any store failure other than a lost race."""
    try:
        yield
    except IntegrityError:
        raise
    except PersistenceError as error:
        raise LedgerUnavailableError(f"The event store is unavailable: {error}") from error


def back_off(attempt: int) -> None:
    """Sleeps up to 1 ms x 2**attempt (at most 50 ms), uniformly at random."""
    time.sleep(random.uniform(0, min(MAX_BACK_OFF_SECONDS, 0.001 * 2**attempt)))
