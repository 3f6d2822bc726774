"""A synchronous HTTP client for an ASGI app with its lifespan running (like Starlette's
TestClient, which now warns when used with httpx): httpx's ASGI transport on an event loop in a
background thread. Several threads may send requests at once; they run concurrently in the app.
"""

from __future__ import annotations

from contextlib import ExitStack
from functools import partial
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

BASE_URL = "http://testserver"


class AppClient:
    """Sends requests to ``app``; use it in a ``with`` block (it starts and stops the app)."""

    def __init__(self, app: FastAPI, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self._headers = headers or {}
        self._stack = ExitStack()
        self._portal: BlockingPortal | None = None
        self._client: httpx.AsyncClient | None = None

    def __enter__(self) -> AppClient:
        portal = self._stack.enter_context(start_blocking_portal())
        self._portal = portal
        self._stack.enter_context(
            portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app))
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=self._headers
        )
        self._client = self._stack.enter_context(portal.wrap_async_context_manager(client))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        assert self._portal is not None and self._client is not None, "use AppClient in a with"
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)
