"""ASGI middleware: a request id on every request (and every 500), the request body limit, and
CORS for the browser origins the settings allow (Starlette's own middleware; off by default)."""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ContentTooLargeError, problem_for, problem_response
from api.schemas.base import Problem

logger = logging.getLogger("api")

MAX_BODY_BYTES = 64 * 1024
REQUEST_ID_HEADER = "X-Request-ID"
#: What a page from an allowed origin may send, and read (beyond what CORS always lets through).
CORS_METHODS = ("GET", "POST", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = (
    "Authorization", "Content-Type", "If-Match", "Idempotency-Key", "Last-Event-ID",
    REQUEST_ID_HEADER,
)  # fmt: skip
CORS_RESPONSE_HEADERS = (
    "ETag", "Location", "Retry-After", "WWW-Authenticate", "Idempotent-Replayed",
    REQUEST_ID_HEADER,
)  # fmt: skip
#: How long a browser may keep a preflight's answer, in seconds.
CORS_MAX_AGE_SECONDS = 600
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID``); turns an unexpected exception into a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = given if _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "Unexpected error in %s %s (request id %s)", scope["method"], scope["path"],
                request_id,
            )
            if started:
                raise
            problem = Problem(
                type="about:blank", title="Internal Server Error", status=500,
                detail="An unexpected error happened; it was logged with this request id.",
                request_id=request_id,
            )
            await problem_response(problem, {REQUEST_ID_HEADER: request_id})(scope, receive, send)


class BodyLimitMiddleware:
    """Answers 413 to a request whose body is over ``max_bytes`` (declared or streamed).

    The body is read whole before the app runs, and a client that leaves before it arrived
    runs nothing: its request is not the one it meant to send (a claim cut before its body
    would otherwise run with the defaults).
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = ContentTooLargeError(
            f"The request body must be at most {self.max_bytes} bytes."
        )
        await problem_for(error)(scope, receive, send)


def add_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Lets pages from ``origins`` (``*``: any) call the API from a browser; none: CORS stays
    off, and browsers keep other origins' pages out. Bearer tokens, not cookies: no credentials.
    Add it last, so that it wraps every answer, the 413s and 500s of the middleware inside it."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=list(CORS_METHODS),
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_RESPONSE_HEADERS),
        max_age=CORS_MAX_AGE_SECONDS,
    )
