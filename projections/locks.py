"""Locks that make one runner (and one rebuild) active per view and store, across processes.

- :class:`MemoryLock`: within one process (the in-memory store has no other).
- :class:`FileLock`: ``fcntl.flock`` on a file beside the SQLite view; the kernel releases it
  when its process dies, however it dies.
- :class:`AdvisoryLock`: a PostgreSQL session-level advisory lock on a connection of its own;
  the server releases it when that connection ends.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg


class LockLostError(RuntimeError):
    """Raised when a runner finds it no longer holds the lock it was running under."""


class ExclusiveLock(ABC):
    """A lock that at most one holder, across processes, has at a time."""

    @abstractmethod
    def acquire(self) -> bool:
        """Takes the lock if it is free; returns whether this holder now has it."""

    @abstractmethod
    def release(self) -> None:
        """Gives the lock back (a no-op when not held)."""

    def check(self) -> None:  # noqa: B027 (only some locks can be lost while held)
        """Raises LockLostError when the lock was lost (say, its connection dropped)."""

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_description() -> str:
    """Who holds a lock: host, process id and since when."""
    since = datetime.now(UTC).isoformat(timespec="seconds")
    return f"{socket.gethostname()} pid {os.getpid()} since {since}"


class MemoryLock(ExclusiveLock):
    """A lock within this process (the in-memory store has no other process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held_here = threading.local()
        self.holder: str | None = None

    def acquire(self) -> bool:
        if getattr(self._held_here, "held", False) or not self._lock.acquire(blocking=False):
            return False
        self._held_here.held = True
        self.holder = f"{holder_description()} thread {threading.current_thread().name}"
        return True

    def release(self) -> None:
        if getattr(self._held_here, "held", False):
            self._held_here.held = False
            self.holder = None
            self._lock.release()


class FileLock(ExclusiveLock):
    """An ``fcntl.flock`` on a file; the file holds its holder's description."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, holder_description().encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @staticmethod
    def holder(path: Path) -> str | None:
        """Who holds the lock at ``path``, or None when nobody does."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.read(fd, 4096).decode(errors="replace") or "unknown"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


Connection = psycopg.Connection[Any]


class AdvisoryLock(ExclusiveLock):
    """A session-level PostgreSQL advisory lock, held on a connection of its own."""

    def __init__(self, conninfo: dict[str, Any], key: int, purpose: str) -> None:
        self._conninfo = conninfo
        self._key = key
        self._purpose = purpose
        self._connection: Connection | None = None
        self._held = False

    def acquire(self) -> bool:
        if self._held:
            return False
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                **self._conninfo,
                autocommit=True,
                application_name=f"jobledger {self._purpose} "
                f"{socket.gethostname()[:24]} pid {os.getpid()}",
            )
        row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        self._held = bool(row and row[0])
        return self._held

    def release(self) -> None:
        self._held = False
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    def check(self) -> None:
        if not self._held or self._connection is None:
            raise LockLostError(f"The {self._purpose} lock is not held.")
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error as error:
            self._held = False
            raise LockLostError(f"The {self._purpose} lock's connection failed: {error}") from error
