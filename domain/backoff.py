"""When a failed attempt runs again: exponential backoff with jitter, in one function."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

#: Seconds before the second attempt (doubling after each), unless the deployment says otherwise.
DEFAULT_RETRY_BASE_SECONDS = 10.0
#: The longest wait between two attempts.
DEFAULT_RETRY_MAX_SECONDS = 3600.0
#: Attempts a job gets unless its creator says otherwise.
DEFAULT_MAX_ATTEMPTS = 3
JITTER = (0.9, 1.1)


@dataclass(frozen=True, slots=True)
class Backoff:
    """The wait after attempt ``n`` ended ``failed`` or ``lease-expired``:
    ``min(maximum, base * 2**(n-1) * U(0.9, 1.1))``. The jitter spreads the retries of jobs that
    failed together (one outage), so they do not all come back at the same instant."""

    base: float = DEFAULT_RETRY_BASE_SECONDS
    maximum: float = DEFAULT_RETRY_MAX_SECONDS
    #: The jitter's source: its own generator, so that drawing from it never shifts another
    #: user of the module-level one (a seeded test, a property-based search).
    uniform: Callable[[float, float], float] = field(
        default_factory=lambda: random.Random().uniform
    )

    def seconds(self, attempt: int) -> float:
        exponent = min(attempt - 1, 64)
        return min(self.maximum, self.base * 2.0**exponent * self.uniform(*JITTER))
