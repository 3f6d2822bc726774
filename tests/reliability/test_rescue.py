"""Rescue: a worker process killed with SIGKILL mid-job loses its lease, and the job runs again.

A real ``jobledger serve`` and a small worker script (claim, then heartbeat until killed) as
separate processes; the server's own sweeper ends the lease. The rescue delay is read from the
job's history (the ``LeaseExpired`` event's time minus the lease it ended), so the bound holds
the server to its promise (within 2 s), not the test's polling.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import on_backends
from tests.eventually import eventually
from tests.reliability.serving import (
    ADMIN_EMAIL,
    REQUEST_TIMEOUT_SECONDS,
    ServeProcess,
    admin_token,
)

RESCUE_PROMISE_SECONDS = 2.0
LEASE_SECONDS = 5

WORKER_SCRIPT = textwrap.dedent(
    """
    import sys, time, httpx
    base, token, lease = sys.argv[1], sys.argv[2], int(sys.argv[3])
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        claim = {"leaseSeconds": lease, "waitSeconds": 10, "worker": "doomed"}
        job = http.post("/api/v1/jobs/claim", json=claim).json()["items"][0]
        print(job["id"], job["attempt"], flush=True)
        while True:
            beat = {"attempt": job["attempt"]}
            http.post(f"/api/v1/jobs/{job['id']}/heartbeat", json=beat).raise_for_status()
            print("beat", flush=True)
            time.sleep(1)
    """
)


def _job(http: httpx.Client, job_id: str) -> Any:
    response = http.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


@on_backends("sqlite", "postgresql")
def test_a_killed_workers_job_is_retrying_within_two_seconds_of_its_lease_then_runs_again(
    store_url: str, tmp_path: Path
) -> None:
    server = ServeProcess(store_url, tmp_path, {"JOBLEDGER_RETRY_BASE_SECONDS": "0.2"})
    try:
        token = admin_token(server.url)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(
            base_url=server.url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
        ) as http:
            created = http.post("/api/v1/jobs", json={"type": "import", "totalItems": 10})
            assert created.status_code == 201, created.text
            worker = subprocess.Popen(
                [sys.executable, "-c", WORKER_SCRIPT, server.url, token, str(LEASE_SECONDS)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert worker.stdout is not None
                job_id, attempt = worker.stdout.readline().split()
                assert (job_id, attempt) == (created.json()["id"], "1")
                assert worker.stdout.readline().strip() == "beat"
            finally:
                worker.kill()
                worker.wait()
                if worker.stdout is not None:
                    worker.stdout.close()
            held = _job(http, job_id)
            assert held["status"] == "processing" and held["worker"] == "doomed"
            eventually(
                lambda: _job(http, job_id)["status"] == "retrying",
                timeout=LEASE_SECONDS + 30, what="the sweeper sending the job back",
            )  # fmt: skip
            history = http.get(f"/api/v1/jobs/{job_id}/history").json()["events"]
            expired = next(e for e in history if e["type"] == "LeaseExpired")
            lease = max(
                datetime.fromisoformat(e["data"]["leaseExpiresAt"])
                for e in history
                if e["type"] in ("Started", "LeaseExtended")
            )
            delay = (datetime.fromisoformat(expired["at"]) - lease).total_seconds()
            assert 0 <= delay <= RESCUE_PROMISE_SECONDS, (
                f"LeaseExpired {delay:.2f} s after the lease"
            )
            assert expired["actor"] == "system:sweeper"
            again = http.post(
                "/api/v1/jobs/claim", json={"waitSeconds": 10, "leaseSeconds": LEASE_SECONDS}
            ).json()["items"]
            assert [(j["id"], j["attempt"]) for j in again] == [(job_id, 2)]
            attempts = again[0]["attempts"]
            assert [(a["attempt"], a["worker"], a["outcome"]) for a in attempts] == [
                (1, "doomed", "lease-expired"), (2, ADMIN_EMAIL, None),
            ]  # fmt: skip
    finally:
        server.stop()
    assert server.unexpected_errors() == []
