"""The worker's HTTP client of the API: claims and batches of commands, retried with backoff.

A request that fails in transit, or that the server could not take (429, 5xx), is sent again
with the same body and ``Idempotency-Key`` until its deadline, so the server runs it at most
once. A 401 re-reads the token (a token file may have been renewed) and tries once more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

logger = logging.getLogger("worker")

API = "/api/v1"
#: The server takes at most this many commands in one batch and this many job types per claim.
MAX_BATCH_COMMANDS = 100
MAX_CLAIM_TYPES = 20
MAX_CLAIM_LIMIT = 100
#: Statuses that mean "not now": the same request may succeed if sent again.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: How long to wait for an answer beyond the time the server may take on purpose (a long-poll).
ANSWER_SECONDS = 30.0


class GaveUp(Exception):
    """A request that could not be delivered before its deadline."""


class Backoff:
    """Delays between tries: doubling from ``first`` up to ``longest``, each jittered."""

    def __init__(self, first: float = 0.05, longest: float = 5.0) -> None:
        self.first = first
        self.longest = longest
        self._random = random.Random()

    def delay(self, tries: int) -> float:
        ceiling = min(self.longest, self.first * 2 ** max(tries - 1, 0))
        return self._random.uniform(ceiling / 2, ceiling)


TokenSource = Callable[[], str]


class ApiClient:
    """The API calls a worker makes, on one ``httpx.AsyncClient``."""

    def __init__(
        self,
        url: str,
        token: str | TokenSource,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._token_source: TokenSource = token if callable(token) else (lambda: token)
        self._token = self._token_source()
        self._backoff = backoff or Backoff()
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            timeout=httpx.Timeout(ANSWER_SECONDS, connect=10.0),
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def claim(
        self,
        *,
        types: list[str],
        limit: int,
        lease_seconds: float,
        wait_seconds: float,
        worker: str,
        give_up_at: float | None = None,
    ) -> list[dict[str, Any]]:
        """Claims up to ``limit`` jobs of ``types``; a claim sent again gets the same jobs."""
        body = {
            "types": types,
            "limit": limit,
            "leaseSeconds": lease_seconds,
            "waitSeconds": wait_seconds,
            "worker": worker,
        }
        answer = await self.post(
            f"{API}/jobs/claim",
            json.dumps(body).encode(),
            key=uuid.uuid4().hex,
            give_up_at=give_up_at,
            wait_seconds=wait_seconds,
        )
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    async def commands(
        self, encoded_commands: list[bytes], *, give_up_at: float
    ) -> list[dict[str, Any]]:
        """Sends one batch (each command already JSON, with its own idempotency key)."""
        body = b'{"commands":[' + b",".join(encoded_commands) + b"]}"
        answer = await self.post(f"{API}/jobs/commands", body, give_up_at=give_up_at)
        results: list[dict[str, Any]] = answer.json()["results"]
        return results

    async def post(
        self,
        path: str,
        body: bytes,
        *,
        give_up_at: float | None,
        key: str | None = None,
        wait_seconds: float = 0.0,
    ) -> httpx.Response:
        """POSTs ``body`` until the server answers something final or ``give_up_at`` passes.

        ``give_up_at`` is a ``time.monotonic()`` instant; None tries for ever. A final answer
        other than 2xx raises ``httpx.HTTPStatusError``.
        """
        tries = 0
        renewed_token = False
        while True:
            tries += 1
            headers = {
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
            }
            if key is not None:
                headers["Idempotency-Key"] = key
            try:
                answer = await self._http.post(
                    path,
                    content=body,
                    headers=headers,
                    timeout=httpx.Timeout(ANSWER_SECONDS + wait_seconds, connect=10.0),
                )
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error}"
            else:
                if answer.status_code == 401 and not renewed_token:
                    renewed_token = True
                    self._token = self._token_source()
                    continue
                if answer.status_code not in RETRYABLE_STATUSES:
                    answer.raise_for_status()
                    return answer
                reason = f"HTTP {answer.status_code}"
            delay = self._backoff.delay(tries)
            if give_up_at is not None and time.monotonic() + delay > give_up_at:
                raise GaveUp(f"POST {path} not delivered after {tries} tries ({reason})")
            logger.warning("POST %s failed (%s); trying again in %.2f s", path, reason, delay)
            await asyncio.sleep(delay)
