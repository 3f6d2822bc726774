"""Event streams: 200 SSE clients on ``/api/v1/events`` while 500 events/s are written.

Server: one ``jobledger serve`` process on each store. A driver process holds the streams on raw
sockets: 20 probes read each event's ``at`` (the server's time when the command ran, just before
its commit) and note when it arrived, so latency is commit to client; the other 180 only count
events. A writer in this process sends progress commands through ``/jobs/commands`` at the
target rate. Each figure sits beside the same measurement with a single stream (the reference:
what fan-out to 200 adds). Also: server CPU per event delivered, and how many clients fell
behind (got fewer events than the probes saw written; target 0). Target: p99 <= 100 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.bench_http_load import (
    HOST,
    free_port,
    percentile,
    process_cpu_seconds,
    setup_admin,
    wait_until_healthy,
)
from bench.bench_http_load import Server as HttpServer
from bench.results import Figure
from bench.support import PostgresUnavailable, postgres_database, sqlite_directory

REPOSITORY = Path(__file__).resolve().parent.parent
JOBS = 25
PROBES = 20
#: The streams one user may hold (the server's limit).
STREAMS_PER_USER = 5
SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class Plan:
    clients: int
    events_per_second: int
    seconds: float


FULL = Plan(clients=200, events_per_second=500, seconds=20.0)
QUICK = Plan(clients=20, events_per_second=100, seconds=4.0)


@dataclass(frozen=True)
class Outcome:
    latencies: list[float]
    counts: list[int]
    written: int
    server_cpu: float

    @property
    def behind(self) -> int:
        return sum(1 for count in self.counts if count < self.written)


# -- the driver (a separate process): holds the streams -------------------------------------


async def _hold(port: int, token: str, job_type: str, probe: bool, seconds: float) -> Any:
    """One stream read for ``seconds``: (its latencies, if a probe; how many events came)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET /api/v1/events?type={job_type} HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    latencies: list[float] = []
    count = 0
    carry = b""
    deadline = time.monotonic() + seconds
    with suppress(TimeoutError):
        while (left := deadline - time.monotonic()) > 0:
            chunk = await asyncio.wait_for(reader.read(1 << 16), left)
            if not chunk:
                break
            arrived = time.time()
            data = carry + chunk
            cut = data.rfind(b"\n\n") + 2
            whole, carry = data[:cut], data[cut:]
            count += whole.count(b"\nevent: ")
            if probe:
                start = 0
                while (at := whole.find(b'"at":"', start)) >= 0:
                    end = whole.index(b'"', at + 6)
                    sent = datetime.fromisoformat(whole[at + 6 : end].decode()).timestamp()
                    latencies.append(arrived - sent)
                    start = end
    writer.close()
    return latencies, count


async def _drive(config: dict[str, Any]) -> dict[str, Any]:
    tokens = config["tokens"]
    holds = [
        _hold(config["port"], tokens[i % len(tokens)], config["type"], i < PROBES,
              config["seconds"])
        for i in range(config["clients"])
    ]  # fmt: skip
    results = await asyncio.gather(*holds)
    return {
        "latencies": [x for latencies, _ in results for x in latencies],
        "counts": [count for _, count in results],
    }


def driver_main() -> None:
    config = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(_drive(config))), flush=True)


# -- the benchmark --------------------------------------------------------------------------


def start(url: str, directory: Path) -> HttpServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBLEDGER_")}
    env.update({"JOBLEDGER_DATABASE_URL": url, "JOBLEDGER_DATA_DIR": str(directory / "var"),
                "JOBLEDGER_JWT_SECRET": "bench-streams-secret-long-enough-0123456789"})  # fmt: skip
    log = directory / "serve.log"
    command = [str(Path(sys.executable).with_name("jobledger")), "serve", "--host", HOST,
               "--port", str(port)]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=directory, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    server = HttpServer("jobledger", process, port, log)
    wait_until_healthy(server)
    server.token = setup_admin(server)
    return server


def viewers(http: httpx.Client, count: int) -> list[str]:
    """Tokens of ``count`` worker users (they see every job), for streams past one user's 5."""
    tokens = []
    for number in range(count):
        account = {"email": f"viewer{number}@example.com", "password": "bench viewer password"}
        http.post("/api/v1/users", json={**account, "role": "worker"}).raise_for_status()
        form = {"username": account["email"], "password": account["password"]}
        answer = http.post("/api/v1/auth/token", data=form)
        answer.raise_for_status()
        tokens.append(answer.json()["access_token"])
    return tokens


def measure(server: HttpServer, plan: Plan, job_type: str, tokens: list[str]) -> Outcome:
    http = httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=30,
                        headers={"Authorization": f"Bearer {server.token}"})  # fmt: skip
    with http:
        jobs = [http.post("/api/v1/jobs", json={"type": job_type}).json()["id"]
                for _ in range(JOBS)]  # fmt: skip
        for job_id in jobs:
            http.post(f"/api/v1/jobs/{job_id}/start").raise_for_status()
        config = {"port": server.port, "tokens": tokens, "type": job_type,
                  "clients": plan.clients,
                  "seconds": plan.seconds + 2 * SETTLE_SECONDS}  # fmt: skip
        driver = subprocess.Popen(
            [sys.executable, "-c", "from bench.bench_streams import driver_main; driver_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPOSITORY, text=True,
        )  # fmt: skip
        assert driver.stdin is not None
        driver.stdin.write(json.dumps(config))
        driver.stdin.close()
        time.sleep(SETTLE_SECONDS)
        written = _write(http, jobs, plan, server.process.pid)
        assert driver.stdout is not None
        result = json.loads(driver.stdout.read())
        driver.wait()
    return Outcome(result["latencies"], result["counts"], written[0], written[1])


def _write(http: httpx.Client, jobs: list[str], plan: Plan, pid: int) -> tuple[int, float]:
    """Progress commands at the plan's rate, 10 requests a second; (events written, CPU s)."""
    per_tick = max(1, plan.events_per_second // 10)
    step = 0
    written = 0
    cpu = process_cpu_seconds(pid)
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < plan.seconds:
        step += 1
        commands = [{"jobId": jobs[(written + i) % len(jobs)], "op": "progress",
                     "processedItems": step} for i in range(per_tick)]  # fmt: skip
        answer = http.post("/api/v1/jobs/commands", json={"commands": commands})
        answer.raise_for_status()
        written += per_tick
        time.sleep(max(0.0, written / plan.events_per_second - elapsed))
    time.sleep(SETTLE_SECONDS)
    return written, process_cpu_seconds(pid) - cpu


def figures_for(store: str, url: str, directory: Path, plan: Plan) -> list[Figure]:
    server = start(url, directory)
    try:
        admin = httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=30,
                             headers={"Authorization": f"Bearer {server.token}"})  # fmt: skip
        with admin:
            tokens = viewers(admin, -(-plan.clients // STREAMS_PER_USER))
        single = measure(server, Plan(1, plan.events_per_second, plan.seconds), "bench-one",
                         tokens)  # fmt: skip
        many = measure(server, plan, "bench-many", tokens)
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(30)
    delivered = max(1, sum(many.counts))
    delivered_single = max(1, sum(single.counts))
    prefix = f"streams {store} {plan.clients} clients"
    return [
        Figure.compare(f"{prefix} latency p50", percentile(many.latencies, 0.5) * 1e3,
                       percentile(single.latencies, 0.5) * 1e3, "ms"),
        Figure.compare(f"{prefix} latency p99", percentile(many.latencies, 0.99) * 1e3,
                       percentile(single.latencies, 0.99) * 1e3, "ms"),
        Figure.compare(f"{prefix} server CPU per event delivered",
                       many.server_cpu / delivered * 1e6,
                       single.server_cpu / delivered_single * 1e6, "us"),
        Figure.compare(f"{prefix} clients behind", many.behind, max(single.behind, 0), "clients"),
        Figure.compare(f"{prefix} events delivered per client", delivered / plan.clients,
                       many.written, "events"),
    ]  # fmt: skip


def run(quick: bool) -> list[Figure]:
    plan = QUICK if quick else FULL
    figures: list[Figure] = []
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-streams")))
        with sqlite_directory() as sqlite_dir:
            url = f"sqlite:///{sqlite_dir / 'events.db'}"
            figures += figures_for("sqlite", url, directory, plan)
        try:
            with postgres_database() as url:
                (directory / "pg").mkdir()
                figures += figures_for("postgresql", url, directory / "pg", plan)
        except PostgresUnavailable as error:
            print(f"streams: PostgreSQL skipped: {error}")
    return figures
