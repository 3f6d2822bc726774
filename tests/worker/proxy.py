"""A TCP proxy on 127.0.0.1 that breaks connections on purpose, for network fault tests.

Every ``drop_request_every``-th chunk from the client is swallowed and every
``drop_answer_every``-th chunk from the server is withheld, and the connection is cut at once:
the first is a request that never arrives, the second an answer that never comes back for a
request the server did run (a lost acknowledgement).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

CHUNK_BYTES = 65_536


class FaultyProxy:
    def __init__(self, target_port: int, drop_request_every: int, drop_answer_every: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._every = {"request": drop_request_every, "answer": drop_answer_every}
        self._seen = {"request": 0, "answer": 0}
        self.dropped = {"request": 0, "answer": 0}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closing = False
        self._accepting = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._accepting.start()

    def close(self) -> None:
        self._closing = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            for source, sink, kind in ((client, upstream, "request"), (upstream, client, "answer")):
                threading.Thread(
                    target=self._pump, args=(source, sink, kind, (client, upstream)), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, kind: str, pair: tuple[socket.socket, ...]
    ) -> None:
        try:
            while chunk := source.recv(CHUNK_BYTES):
                if self._drop(kind):
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        for end in pair:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def _drop(self, kind: str) -> bool:
        with self._lock:
            self._seen[kind] += 1
            if self._seen[kind] % self._every[kind]:
                return False
            self.dropped[kind] += 1
            return True


@contextmanager
def faulty_proxy(
    target_port: int, drop_request_every: int, drop_answer_every: int
) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(target_port, drop_request_every, drop_answer_every)
    try:
        yield proxy
    finally:
        proxy.close()
