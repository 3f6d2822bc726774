"""Logging in: check a password against the account, throttle failures, rehash when needed.

Failed logins are ``User.LoginFailed`` events, so the count is shared by every API process on
the same store: five failures within 15 minutes lock the account's logins for the rest of the
window (429 with ``Retry-After``), whatever the client address. A locked account records nothing
more, so an attacker can add at most five events per account per window.
"""

from __future__ import annotations

from api.errors import NotAuthenticatedError
from api.passwords import Passwords
from domain.errors import InvalidInputError, UserNotFoundError
from domain.ledger import JobLedger
from domain.user import User

BAD_CREDENTIALS = "Incorrect email or password."


def log_in(ledger: JobLedger, passwords: Passwords, email: str, password: str) -> User:
    """Returns the user these credentials belong to; raises 401 or 429 errors otherwise."""
    try:
        user = ledger.find_user(email)
    except (UserNotFoundError, InvalidInputError):
        passwords.verify_nobody(password)
        raise NotAuthenticatedError(BAD_CREDENTIALS) from None
    user.check_login_allowed()
    if not passwords.verify(user.password_hash, password):
        ledger.record_failed_login(user.id)
        raise NotAuthenticatedError(BAD_CREDENTIALS)
    user = ledger.get_user(user.id)
    user.check_login_allowed()
    if user.disabled:
        raise NotAuthenticatedError("This account is disabled.")
    if passwords.needs_rehash(user.password_hash):
        user = ledger.change_password(user.id, passwords.hash(password), actor=str(user.id))
    return user
