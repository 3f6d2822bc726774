"""Logging in: check a password against the account, throttle failures, rehash when needed.

Three throttles keep guessing slow without letting anyone lock the owner out:

- per account and client address: five failures within 15 minutes refuse that address for that
  account for the rest of the window (429 with ``Retry-After``); other addresses still log in;
- per account, across addresses: beyond 10 failures in the window each one delays the account's
  next attempt (2, 4, 8, ... seconds, at most 60), and 50 refuse the account for the window;
- per client address, across accounts (credential stuffing): 100 failures within 15 minutes
  refuse that address for every account for the rest of the window.

The first two are ``User.LoginFailed`` events (see ``domain.user``), shared by every API process
on the store; a refused attempt records nothing, so an account gets at most 50 events per window.
The third is ``AddressThrottle``, in this process' memory: bounded (100 times for each of at most
10,000 addresses, the least recently failing forgotten first), counted per API process, and lost
on restart. The address is the socket's peer (``request.client.host``), never a header such as
``X-Forwarded-For`` that a client could set.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import Request

from api.errors import NotAuthenticatedError, PermissionDeniedError
from api.passwords import Passwords
from domain.errors import AddressThrottledError, InvalidInputError, UserNotFoundError
from domain.ledger import JobLedger
from domain.user import LOGIN_WINDOW, UNKNOWN_ADDRESS, User

BAD_CREDENTIALS = "Incorrect email or password."
WRONG_CURRENT_PASSWORD = "The current password is incorrect."
#: Failures from one address, across accounts, that refuse it for the rest of LOGIN_WINDOW.
MAX_ADDRESS_FAILED_LOGINS = 100
#: Addresses whose failures one process remembers.
MAX_TRACKED_ADDRESSES = 10_000


class AddressThrottle:
    """Recent failed logins per client address, whatever the account, in this process."""

    def __init__(
        self,
        limit: int = MAX_ADDRESS_FAILED_LOGINS,
        window_seconds: float = LOGIN_WINDOW.total_seconds(),
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, address: str) -> None:
        """Raises AddressThrottledError while ``address`` is refused."""
        now = self._clock()
        with self._lock:
            times = self._failures.get(address)
            if times is None or len(times) < self.limit:
                return
            until = times[0] + self.window_seconds
        if until > now:
            raise AddressThrottledError(math.ceil(until - now))

    def fail(self, address: str) -> None:
        """Counts a failed login from ``address``."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.limit)
            times.append(now)
            self._failures[address] = times
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)


def client_address(request: Request) -> str:
    """The client's address as the socket reports it (``unknown`` when there is none)."""
    return request.client.host if request.client and request.client.host else UNKNOWN_ADDRESS


def log_in(
    ledger: JobLedger,
    passwords: Passwords,
    email: str,
    password: str,
    *,
    address: str,
    throttle: AddressThrottle,
) -> User:
    """Returns the user these credentials belong to; raises 401 or 429 errors otherwise."""
    throttle.check(address)
    try:
        user = ledger.find_user(email)
    except (UserNotFoundError, InvalidInputError):
        passwords.verify_nobody(password)
        throttle.fail(address)
        raise NotAuthenticatedError(BAD_CREDENTIALS) from None
    user.check_login_allowed(address)
    if not passwords.verify(user.password_hash, password):
        _count_failure(ledger, user, address, throttle)
        raise NotAuthenticatedError(BAD_CREDENTIALS)
    user = ledger.get_user(user.id)
    user.check_login_allowed(address)
    if user.disabled:
        raise NotAuthenticatedError("This account is disabled.")
    if passwords.needs_rehash(user.password_hash):
        user = ledger.change_password(user.id, passwords.hash(password), actor=str(user.id))
    return user


def change_own_password(
    ledger: JobLedger,
    passwords: Passwords,
    user: User,
    current_password: str,
    new_password: str,
    *,
    address: str,
    throttle: AddressThrottle,
) -> User:
    """Replaces the caller's password when ``current_password`` is theirs; a wrong one is a
    failed login (403, and counted by the throttles), a throttled address is 429."""
    throttle.check(address)
    user.check_login_allowed(address)
    if not passwords.verify(user.password_hash, current_password):
        _count_failure(ledger, user, address, throttle)
        raise PermissionDeniedError(WRONG_CURRENT_PASSWORD)
    return ledger.change_password(user.id, passwords.hash(new_password), actor=str(user.id))


def _count_failure(ledger: JobLedger, user: User, address: str, throttle: AddressThrottle) -> None:
    throttle.fail(address)
    ledger.record_failed_login(user.id, address)
