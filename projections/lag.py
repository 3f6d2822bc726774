"""The lag probe: the log's head and the view's position, read in bounded time even when the
store hangs (what the health check reports).

The store's client retries a failing call for tens of seconds before giving up; a health check
must answer long before that. The probe reads the log head and the view's position in a
background thread, shared by every concurrent caller (one read in flight at a time), and gives up
waiting after ``timeout`` seconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from domain.errors import JobLedgerError, LedgerUnavailableError
from domain.ledger import JobLedger
from projections.readmodel import ReadModel

PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Positions:
    """The log's head and how far the read model has got."""

    head: int
    position: int


class _Read:
    """One read in flight: set ``result``, then ``done``."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Positions | JobLedgerError | None = None


class LagProbe:
    """Reads the head and the view's position within ``timeout`` seconds, or raises 503."""

    def __init__(
        self, ledger: JobLedger, read_model: ReadModel, timeout: float = PROBE_TIMEOUT_SECONDS
    ) -> None:
        self.ledger = ledger
        self.read_model = read_model
        self.timeout = timeout
        self._lock = threading.Lock()
        self._in_flight: _Read | None = None

    def positions(self) -> Positions:
        """The current positions; LedgerUnavailableError when the store fails or is too slow."""
        with self._lock:
            read = self._in_flight
            if read is None:
                read = self._in_flight = _Read()
                threading.Thread(target=self._read, args=(read,), daemon=True).start()
        if not read.done.wait(self.timeout):
            raise LedgerUnavailableError(f"The store did not answer within {self.timeout:g} s.")
        if isinstance(read.result, JobLedgerError):
            raise read.result
        assert read.result is not None
        return read.result

    def _read(self, read: _Read) -> None:
        try:
            read.result = Positions(head=self.ledger.head(), position=self.read_model.position())
        except JobLedgerError as error:
            read.result = error
        finally:
            with self._lock:
                self._in_flight = None
            read.done.set()
