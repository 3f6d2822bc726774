"""Soak: many requests against one ``jobledger serve`` process, whose memory must level off.

The issue asks for 100,000 requests, with the server's RSS after them within 1.2x of its RSS
after 10,000. That takes several minutes on 2 cores, too long for ``make test``; so this test
(marked ``soak``, still run by ``make test``) is sized to about a minute here (~280 requests/s):
16,000 requests from 16 clients, RSS taken after 1,600 and after 16,000, the same 1.2x bound.
``JOBLEDGER_SOAK_REQUESTS=100000`` runs the full size (the first measurement stays at a tenth).

The requests are cheap and mixed: each client creates a job and starts it, then repeats
(get the job, public progress, a list page, a progress update), creating a new job every 200
requests, so the write path, the read model and the caches are all exercised.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import on_backends
from tests.reliability.serving import ServeProcess, admin_token

REQUESTS = int(os.environ.get("JOBLEDGER_SOAK_REQUESTS", "16000"))
FIRST_MEASURE = REQUESTS // 10
CLIENTS = 16
MAX_SECONDS = 240.0
MAX_GROWTH = 1.2
REQUESTS_PER_JOB = 200


class Soak:
    """``CLIENTS`` threads sending requests until ``REQUESTS`` in all (or ``MAX_SECONDS``)."""

    def __init__(self, server: ServeProcess, token: str) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}
        self.lock = threading.Lock()
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.rss_first: int | None = None
        self.deadline = time.monotonic() + MAX_SECONDS

    def _next(self) -> bool:
        with self.lock:
            if self.sent >= REQUESTS or time.monotonic() > self.deadline:
                return False
            self.sent += 1
            if self.sent == FIRST_MEASURE:
                self.rss_first = self.server.rss()
            return True

    def client(self) -> None:
        with httpx.Client(base_url=self.server.url, headers=self.headers, timeout=30) as http:
            done, job, processed = 0, "", 0
            while self._next():
                if done % REQUESTS_PER_JOB == 0:
                    created = http.post("/api/v1/jobs", json={"type": "soak", "totalItems": 10**6})
                    assert created.status_code == 201, created.text
                    job = created.json()["id"]
                    status = http.post(f"/api/v1/jobs/{job}/start").status_code
                    processed = 0
                else:
                    step = done % 4
                    if step == 0:
                        status = http.get(f"/api/v1/jobs/{job}").status_code
                    elif step == 1:
                        status = http.get(f"/api/v1/jobs/{job}/progress").status_code
                    elif step == 2:
                        status = http.get("/api/v1/jobs", params={"limit": 20}).status_code
                    else:
                        processed += 1
                        status = http.post(
                            f"/api/v1/jobs/{job}/progress", json={"processedItems": processed}
                        ).status_code
                done += 1
                with self.lock:
                    self.statuses[status] += 1


@pytest.mark.soak
@pytest.mark.slow
@on_backends("sqlite")
def test_memory_levels_off_over_many_requests(store_url: str, tmp_path: Path) -> None:
    server = ServeProcess(store_url, tmp_path)
    try:
        soak = Soak(server, admin_token(server.url))
        started = time.monotonic()
        threads = [threading.Thread(target=soak.client, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(MAX_SECONDS + 30)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        seconds = time.monotonic() - started
        rss_last = server.rss()
        assert soak.rss_first is not None
        print(
            f"{soak.sent} requests in {seconds:.0f} s; {dict(soak.statuses)}; RSS "
            f"{soak.rss_first / 2**20:.1f} MiB after {FIRST_MEASURE}, "
            f"{rss_last / 2**20:.1f} MiB after {soak.sent}"
        )
        assert soak.sent == REQUESTS, f"only {soak.sent} requests in {MAX_SECONDS} s"
        assert set(soak.statuses) <= {200, 201}, soak.statuses
        assert rss_last <= MAX_GROWTH * soak.rss_first
        assert not server.unexpected_errors()
    finally:
        server.stop()
