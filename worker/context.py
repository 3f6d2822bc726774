"""What a handler sees of its job (``JobContext``) and how it gives up on it (``Discard``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``(op, body)`` -> queued: how a context hands its answers to the worker.
Send = Callable[[str, dict[str, Any]], None]


class Discard(Exception):
    """Raised by a handler: fail the job for good, without another attempt."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobContext:
    """One attempt at one job, as its handler sees it.

    ``progress`` and ``log_error`` queue their answer and return at once (from a thread or the
    event loop alike); the worker sends a job's answers in call order, before its complete or
    fail. A rejected answer is logged, not raised.
    """

    def __init__(self, job: dict[str, Any], send: Send) -> None:
        self.job = job
        self.id: str = job["id"]
        self.type: str = job["type"]
        self.data: Any = job["data"]
        self.attempt: int = job["attempt"]
        self.max_attempts: int = job["maxAttempts"]
        self._send = send
        self._cancelled = bool(job.get("cancelRequested"))
        self._lease_lost = False

    @property
    def cancelled(self) -> bool:
        """True once the server asked the job to stop, or the attempt lost its lease."""
        return self._cancelled

    @property
    def lease_lost(self) -> bool:
        """True once the attempt lost its lease: the job is someone else's, nothing more is sent."""
        return self._lease_lost

    def progress(self, processed: int, total: int | None = None) -> None:
        """Reports ``processed`` items done (of ``total``, if it is known or has changed)."""
        body: dict[str, Any] = {"processedItems": processed}
        if total is not None:
            body["totalItems"] = total
        self._send("progress", body)

    def log_error(self, message: str, item: str | None = None, details: Any = None) -> None:
        """Records an error met on the way (a bad row, say) without failing the attempt."""
        body: dict[str, Any] = {"message": message}
        if item is not None:
            body["item"] = item
        if details is not None:
            body["details"] = details
        self._send("errors", body)

    def _request_cancel(self) -> None:
        self._cancelled = True

    def _lose_lease(self) -> None:
        self._lease_lost = True
        self._cancelled = True

    def __repr__(self) -> str:
        return f"JobContext(id={self.id!r}, type={self.type!r}, attempt={self.attempt})"
