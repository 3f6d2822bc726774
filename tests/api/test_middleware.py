"""The body middleware: a request runs only once its whole body has arrived."""

from __future__ import annotations

import asyncio
from typing import Any

from api.middleware import BodyLimitMiddleware

SCOPE = {"type": "http", "method": "POST", "path": "/api/v1/jobs/claim",
         "headers": [(b"content-length", b"83")]}  # fmt: skip


def run(messages: list[dict[str, Any]]) -> list[bytes]:
    """The bodies the wrapped app was called with, given what the client sent."""
    called: list[bytes] = []
    sent = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(sent)

    async def send(message: Any) -> None:
        raise AssertionError(f"nothing should be answered here, got {message}")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append((await receive())["body"])

    asyncio.run(BodyLimitMiddleware(app)(SCOPE, receive, send))
    return called


def test_a_whole_body_reaches_the_app_in_one_piece() -> None:
    assert run([
        {"type": "http.request", "body": b'{"limit":', "more_body": True},
        {"type": "http.request", "body": b" 2}", "more_body": False},
    ]) == [b'{"limit": 2}']  # fmt: skip


def test_a_client_that_leaves_before_its_body_arrived_runs_nothing() -> None:
    assert run([{"type": "http.disconnect"}]) == []
    assert run([
        {"type": "http.request", "body": b'{"limit":', "more_body": True},
        {"type": "http.disconnect"},
    ]) == []  # fmt: skip
