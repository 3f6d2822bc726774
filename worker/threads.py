"""Threads for synchronous handlers.

Daemon threads, unlike ``concurrent.futures``' (which the interpreter joins at exit): a handler
still running when the grace period ends is abandoned with the process, its lease left to lapse.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[Any], Any], Any]


class HandlerThreads:
    """Up to ``size`` daemon threads that run calls handed to them by the event loop."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def run(self, function: Callable[[Any], Any], argument: Any) -> asyncio.Future[Any]:
        """``function(argument)`` on a thread; the future resolves on the calling loop."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._serve, name=f"handler-{len(self._threads) + 1}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._calls.put((loop, result, function, argument))
        return result

    def close(self) -> None:
        """Lets idle threads end; busy ones end after their call."""
        for _ in self._threads:
            self._calls.put(None)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, result, function, argument = call
            try:
                value, error = function(argument), None
            except BaseException as raised:
                value, error = None, raised
            try:
                loop.call_soon_threadsafe(_settle, result, value, error)
            except RuntimeError:
                return
            with self._lock:
                self._idle += 1


def _settle(result: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if result.done():
        return
    if error is None:
        result.set_result(value)
    else:
        result.set_exception(error)
