"""``eventually``: wait for a condition the code under test makes true, with a generous bound.

Tests synchronise on what the code exposes (a runner's ``active`` flag, a log position, a
server's answer), never on a sleep: a sleep long enough on an idle machine is too short on a
loaded one, and far too long everywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: The bound when a test gives none: far beyond what any condition here needs on an idle machine,
#: so that only a real failure (or a hang) reaches it.
DEFAULT_TIMEOUT_SECONDS = 10.0


def eventually(
    condition: Callable[[], object],
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    *,
    what: str = "the condition",
    interval: float = 0.005,
) -> float:
    """Polls ``condition()`` until it is true and returns the seconds that took; fails with
    ``what`` in the message when it is still false after ``timeout`` seconds."""
    started = time.monotonic()
    while not condition():
        waited = time.monotonic() - started
        if waited >= timeout:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)
    return time.monotonic() - started
