"""``Idempotency-Key`` on the command routes: a command sent again gets the first answer.

The ``IdempotencyKey`` dependency reads the header and fingerprints the request (method, path
and body, SHA-256); :func:`keyed` hands the ledger an ``Idempotency`` that stores the answer the
route gives (status, headers and body) in the command's own transaction (``domain.receipts``).
A repeat with the same key and fingerprint is answered from the receipt, with
``Idempotent-Replayed: true``, and records nothing; the same key on another request is 409.
Only answers of commands that succeeded are stored: a refused command raises before any save.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request, Response

from api.schemas.base import NOT_BLANK
from domain.ledger import CommandResult
from domain.receipts import MAX_IDEMPOTENCY_KEY_CHARS, Idempotency
from projections.readmodel import Commands

REPLAYED_HEADER = "Idempotent-Replayed"
#: Headers of an answer worth keeping (the rest, such as content-length, are recomputed).
KEPT_HEADERS = ("etag", "location")

Render = Callable[[Any], Response]


@dataclass(frozen=True, slots=True)
class RequestKey:
    """A request's idempotency key and its fingerprint."""

    key: str
    fingerprint: str

    def idempotency(self, actor: str, render: Render) -> Idempotency:
        """What the ledger needs to keep the answer ``render(outcome)`` under this key."""
        return Idempotency(
            actor, self.key, self.fingerprint, lambda outcome: stored(render(outcome))
        )


async def request_key(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            pattern=NOT_BLANK,
            description="Makes the command safe to send again: a repeat with the same key and "
            "the same request gets the first answer and records nothing (kept at least 24 h); "
            "the same key with another request is 409.",
        ),
    ] = None,
) -> RequestKey | None:
    """The request's key and fingerprint, or None without the header."""
    if idempotency_key is None:
        return None
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), await request.body()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return RequestKey(idempotency_key, digest.hexdigest())


IdempotencyKey = Annotated[RequestKey | None, Depends(request_key)]


def stored(response: Response) -> tuple[int, str]:
    """An answer as a receipt keeps it: the status, and the kept headers with the body."""
    headers = {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}
    body = bytes(response.body).decode()
    return response.status_code, orjson.dumps({"headers": headers, "body": body}).decode()


def replayed(answer: tuple[int, str]) -> Response:
    """The stored answer, as it was first sent, marked as a replay."""
    status_code, text = answer
    kept = orjson.loads(text)
    headers = {**kept["headers"], REPLAYED_HEADER: "true"}
    return Response(
        kept["body"], status_code=status_code, headers=headers, media_type="application/json"
    )


async def keyed(
    commands: Commands,
    key: RequestKey | None,
    actor: str,
    render: Render,
    command: Callable[..., CommandResult],
) -> Response:
    """Runs ``command`` (given ``idempotency=``) and answers ``render(job)``, or the stored
    answer when the key was answered before."""
    idempotency = None if key is None else key.idempotency(actor, render)
    result = await commands.run(command, idempotency=idempotency)
    return replayed(result.answer) if result.answer is not None else render(result.job)
