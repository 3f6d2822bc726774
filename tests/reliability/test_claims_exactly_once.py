"""Exactly once across processes: two ``jobledger serve`` processes on one store, twenty
claimers over HTTP, every job handed out exactly once, and no claim answered twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import on_backends
from tests.reliability.serving import REQUEST_TIMEOUT_SECONDS, ServeProcess, admin_token

JOBS = 300
CLAIMERS = 20
BATCH = 5


@on_backends("sqlite", "postgresql")
def test_twenty_http_claimers_on_two_servers_claim_each_job_exactly_once(
    store_url: str, tmp_path: Path
) -> None:
    folders = [tmp_path / f"server-{n}" for n in range(2)]
    for folder in folders:
        folder.mkdir()
    servers = [ServeProcess(store_url, folder) for folder in folders]
    try:
        token = admin_token(servers[0].url)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=servers[0].url, headers=headers, timeout=30) as http:
            made = set()
            for _ in range(JOBS):
                created = http.post("/api/v1/jobs", json={"type": "import"})
                assert created.status_code == 201, created.text
                made.add(created.json()["id"])
        handed: Counter[str] = Counter()
        refusals: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + 120

        def claimer(number: int) -> None:
            base = servers[number % 2].url
            with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS) as c:
                idle = 0
                while idle < 3 and time.monotonic() < deadline:
                    answer = c.post("/api/v1/jobs/claim", json={"limit": BATCH, "waitSeconds": 1})
                    if answer.status_code != 200:
                        with lock:
                            refusals.append(f"{answer.status_code} {answer.text[:200]}")
                        continue
                    ids = [job["id"] for job in answer.json()["items"]]
                    assert all(job["attempt"] == 1 for job in answer.json()["items"])
                    idle = 0 if ids else idle + 1
                    with lock:
                        handed.update(ids)

        threads = [threading.Thread(target=claimer, args=(n,)) for n in range(CLAIMERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(150)
        assert not refusals, refusals[:5]
        assert set(handed) == made, f"{len(made - set(handed))} of {JOBS} jobs never claimed"
        twice = [job for job, n in handed.items() if n > 1]
        assert not twice, f"{len(twice)} jobs handed to two claimers"
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert server.unexpected_errors() == []
