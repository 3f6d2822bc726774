"""Password hashing: argon2id with OWASP's parameters, rehashed on login when they change."""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024


class Passwords:
    """Hashes and verifies passwords; bounds how many hashes run at once (each takes 19 MiB)."""

    def __init__(self, hasher: PasswordHasher | None = None, concurrency: int | None = None):
        #: argon2id, m=19 MiB, t=2, p=1: OWASP's first recommended configuration.
        self.hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._slots = threading.BoundedSemaphore(concurrency or os.cpu_count() or 2)
        self._dummy_hash = self.hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        """Returns the encoded argon2id hash of ``password``."""
        with self._slots:
            return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Tells whether ``password`` matches ``password_hash``."""
        with self._slots:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def verify_nobody(self, password: str) -> None:
        """Spends the time of one verification, so an unknown account answers like a known one."""
        self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Tells whether the hash was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
