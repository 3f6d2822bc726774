"""How the ledger meets its store: the store's failures and lost optimistic-concurrency races.

- ``store_errors()`` turns the store's own failures (not concurrency conflicts) into
  ``LedgerUnavailableError``, so no raw library error leaks out of the ledger.
- ``back_off(attempt)`` sleeps a short random time before retrying a command that lost a race,
  so several processes racing on one aggregate spread out instead of colliding again.
- ``until_saved(...)`` is the one retry loop of every command: it runs the command again on fresh
  state when its save lost a race, a bounded number of times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from eventsourcing.persistence import IntegrityError, PersistenceError

from domain.errors import LedgerUnavailableError

MAX_BACK_OFF_SECONDS = 0.05

S = TypeVar("S")
R = TypeVar("R")


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


def until_saved(
    attempt: Callable[[S], R],
    fresh: Callable[[], S],
    *,
    attempts: int,
    exhausted: Callable[[], Exception],
    cached: S | None = None,
    stale: tuple[type[Exception], ...] = (),
) -> R:
    """Runs ``attempt(state)`` (a command and its save) until the save does not lose a race.

    The first attempt runs on ``cached`` when given: this process's copy, which may be behind the
    store. Against it a lost race (``IntegrityError``) or an error in ``stale`` (the rules refusing
    what may be an old state) proves nothing, so the next attempt runs at once on ``fresh()``.
    Against fresh state an error in ``stale`` is the answer and is raised, and a lost race backs
    off before the next attempt, again on ``fresh()``. After ``attempts`` attempts, raises
    ``exhausted()``.
    """
    state, is_fresh = (fresh(), True) if cached is None else (cached, False)
    for number in range(1, attempts + 1):
        try:
            return attempt(state)
        except stale:
            if is_fresh:
                raise
        except IntegrityError:
            if is_fresh:
                back_off(number)
        state, is_fresh = fresh(), True
    raise exhausted()
