"""Command receipts: what makes a command with an ``Idempotency-Key`` safe to send again.

A receipt is an aggregate of one event, ``Recorded``, saved in the same transaction as the
command's own events (or alone, when the command recorded nothing, as a heartbeat may). Its id
is derived from the caller and the key (``uuid5``), so a second receipt for the same key cannot
be stored: the store's uniqueness check decides, across processes. It keeps the request's
fingerprint (the entry point's: method, path and body) and the answer the command gave, as
opaque text: a repeat with the same fingerprint gets that answer verbatim and records nothing;
another fingerprint is refused. Receipts are kept with the log (at least as long as the
24 hours the contract promises).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInputError

RECEIPT_NAMESPACE = UUID("0b7f3c1e-2a47-4c55-9a0e-5f2c8d913a64")
MAX_IDEMPOTENCY_KEY_CHARS = 200
MAX_FINGERPRINT_CHARS = 200


class CommandReceipt(Aggregate):
    """The answer a command gave to one idempotency key of one caller."""

    TOPIC = "jobledger:CommandReceipt"

    class Event(Aggregate.Event):
        TOPIC = "jobledger:CommandReceipt.Event"
        actor: str

    class Recorded(Event, Aggregate.Created):
        TOPIC = "jobledger:CommandReceipt.Recorded"
        fingerprint: str
        status_code: int
        body: str

        def apply(self, receipt: CommandReceipt) -> None:
            receipt.actor = self.actor
            receipt.fingerprint = self.fingerprint
            receipt.status_code = self.status_code
            receipt.body = self.body

    def __init__(self) -> None:
        """The state is assigned by ``Recorded.apply``."""

    actor: str
    fingerprint: str
    status_code: int
    body: str


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A command's idempotency key, its request's fingerprint, and how to write its answer.

    ``answer(result)`` turns the command's outcome (a job, or a list of jobs for a claim) into
    ``(status_code, body)``; it runs before the save, so the stored answer is the one sent.
    """

    actor: str
    key: str
    fingerprint: str
    answer: Callable[[Any], tuple[int, str]]

    @property
    def receipt_id(self) -> UUID:
        return receipt_id(self.actor, self.key)

    def receipt(self, outcome: Any) -> CommandReceipt:
        status_code, body = self.answer(outcome)
        receipt: CommandReceipt = CommandReceipt._create(
            CommandReceipt.Recorded, id=self.receipt_id, actor=self.actor,
            fingerprint=self.fingerprint, status_code=status_code, body=body,
        )  # fmt: skip
        return receipt


def receipt_id(actor: str, key: str) -> UUID:
    """The receipt's id: one per caller and key (raises InvalidInputError for a bad key)."""
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidInputError(
            "Idempotency-Key",
            f"must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY_CHARS} characters",
        )
    return uuid5(uuid5(RECEIPT_NAMESPACE, actor), key)
