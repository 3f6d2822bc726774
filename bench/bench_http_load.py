"""HTTP load: a real ``jobledger serve`` process against the CRUD baseline, 32 clients, same run.

Servers: ``jobledger serve`` and ``python -m bench.crud_baseline`` (one mutable ``jobs`` row per
job, read-modify-write, one transaction per request; same auth and durability), each its own
uvicorn process with one worker (``JOBLEDGER_BENCH_HTTP_WORKERS`` changes both), each on its own
temporary SQLite file or its own fresh PostgreSQL database (``jobledger_load_<random>``, dropped
afterwards). Both are up together; the idle one waits while the other is loaded.

Load: a driver process of its own (asyncio, one keep-alive HTTP/1.1 connection per client, so it
does not share the server's GIL and spends little CPU), 127.0.0.1 only. Mixed phase: 32 clients,
each running job lifecycles: create, start, 5 progress updates, get, 5 progress updates, list
(one of six filters: none, status, two statuses, type, offset), complete; 13 writes and 2 reads
per lifecycle. List phase: 32 clients only listing (the same filters, limit 20) over the jobs the
mixed phase left. The two servers take turns, round by round, their order flipping each round, so
machine noise hits both; every run is bounded by a request count and a time limit.

Figures per store (value: jobledger, reference: baseline, ratio = jobledger / baseline): write
requests/s (target >= 1.0x), write p99 latency (target <= 1.5x), list requests/s in the list
phase (target >= 1.0x), p50/p99 per endpoint, all requests/s, server CPU time per request
(/proc/<pid>/stat utime+stime over the load windows), and the server's peak RSS (VmHWM).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from bench.results import REPOSITORY, Figure
from bench.support import ADMIN_URL, CONNECT_TIMEOUT_SECONDS, PostgresUnavailable
from stores import Store

CLIENTS = 32
PROGRESS_UPDATES = 10
TOTAL_ITEMS = 1_000
JOB_TYPES = ("import-csv", "export-pdf", "resize-images", "send-emails")
LIST_QUERIES = (
    "limit=20",
    "status=completed&limit=20",
    "status=processing&limit=20",
    "status=pending&status=processing&limit=20",
    "type=import-csv&limit=20",
    "limit=20&offset=100",
)
WRITE_ENDPOINTS = ("create", "start", "progress", "complete")
ENDPOINTS = (*WRITE_ENDPOINTS, "get", "list")
HOST = "127.0.0.1"
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "load-benchmark-password"
REQUEST_TIMEOUT_SECONDS = 30.0
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
MAX_ERROR_FRACTION = 0.01
WORKERS = int(os.environ.get("JOBLEDGER_BENCH_HTTP_WORKERS", "1"))


@dataclass(frozen=True)
class Plan:
    """How much load: rounds per server, and per client per round, with a time limit per run."""

    warmup_lifecycles: int
    rounds: int
    lifecycles: int
    list_rounds: int
    lists: int
    run_seconds: float


FULL = Plan(warmup_lifecycles=2, rounds=6, lifecycles=3, list_rounds=4, lists=40, run_seconds=120)
QUICK = Plan(warmup_lifecycles=0, rounds=1, lifecycles=1, list_rounds=1, lists=4, run_seconds=20)


# -- the driver (runs in its own process: python -m bench.bench_http_load '<json>') ----------


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, with a minimal response parser."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = (
            f"Host: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Sends one request and reads the whole response; returns status and body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        extra = b"Content-Type: application/json\r\n" if body is not None else b""
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode() + self.head + extra
            + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, value in (line.split(":", 1) for line in lines[1:] if ":" in line)
        )
        if headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunks()
        else:
            content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, content

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


@dataclass
class Tally:
    """What one driver run saw: latencies (ms) and unexpected answers, per endpoint."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def error(self, endpoint: str, status: int, body: bytes) -> None:
        self.errors[endpoint] = self.errors.get(endpoint, 0) + 1
        if len(self.samples) < 5:
            self.samples.append(f"{endpoint} {status}: {body[:200]!r}")


async def call(
    tally: Tally, connection: Connection, endpoint: str, expected: int, method: str, path: str,
    body: Any = None,
) -> bytes | None:
    """One timed request; the body when the status is the expected one, else None (counted)."""
    started = time.perf_counter()
    try:
        status, content = await asyncio.wait_for(
            connection.request(method, path, body), REQUEST_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
        await connection.close()
        tally.error(endpoint, 0, repr(error).encode())
        return None
    tally.latencies[endpoint].append((time.perf_counter() - started) * 1000)
    if status != expected:
        tally.error(endpoint, status, content)
        return None
    return content


async def lifecycles(
    tally: Tally, connection: Connection, client: int, count: int, deadline: float
) -> None:
    """Runs ``count`` job lifecycles (or fewer, when the deadline comes first)."""
    jobs = "/api/v1/jobs"
    for number in range(count):
        if time.monotonic() > deadline:
            return
        job_type = JOB_TYPES[(client + number) % len(JOB_TYPES)]
        body = {"type": job_type, "data": {"client": client, "n": number, "source": "bench.csv"},
                "totalItems": TOTAL_ITEMS}
        created = await call(tally, connection, "create", 201, "POST", jobs, body)
        if created is None:
            continue
        path = f"{jobs}/{json.loads(created)['id']}"
        await call(tally, connection, "start", 200, "POST", f"{path}/start")
        step = TOTAL_ITEMS // PROGRESS_UPDATES
        for update in range(1, PROGRESS_UPDATES + 1):
            progress = {"processedItems": update * step}
            await call(tally, connection, "progress", 200, "POST", f"{path}/progress", progress)
            if update == PROGRESS_UPDATES // 2:
                await call(tally, connection, "get", 200, "GET", path)
        query = LIST_QUERIES[(client + number) % len(LIST_QUERIES)]
        await call(tally, connection, "list", 200, "GET", f"{jobs}?{query}")
        result = {"result": {"imported": TOTAL_ITEMS}}
        await call(tally, connection, "complete", 200, "POST", f"{path}/complete", result)


async def lists(
    tally: Tally, connection: Connection, client: int, count: int, deadline: float
) -> None:
    """Runs ``count`` list queries (or fewer, when the deadline comes first)."""
    for number in range(count):
        if time.monotonic() > deadline:
            return
        query = LIST_QUERIES[(client + number) % len(LIST_QUERIES)]
        await call(tally, connection, "list", 200, "GET", f"/api/v1/jobs?{query}")


async def drive(config: dict[str, Any]) -> dict[str, Any]:
    """One load run: ``clients`` clients, each doing ``count`` units of ``phase``."""
    phase = lifecycles if config["phase"] == "mixed" else lists
    tally = Tally()
    connections = [Connection(config["port"], config["token"]) for _ in range(config["clients"])]
    deadline = time.monotonic() + config["seconds"]
    cpu_before = process_cpu_seconds(config["pid"])
    driver_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(
        phase(tally, connection, client, config["count"], deadline)
        for client, connection in enumerate(connections)
    ))
    elapsed = time.perf_counter() - started
    cpu = process_cpu_seconds(config["pid"]) - cpu_before
    driver_cpu = time.process_time() - driver_before
    for connection in connections:
        await connection.close()
    return {"elapsed": elapsed, "cpu": cpu, "driver_cpu": driver_cpu,
            "latencies": tally.latencies, "errors": tally.errors, "samples": tally.samples,
            "timed_out": time.monotonic() > deadline}


def driver_main(argument: str) -> int:
    config = json.loads(argument)
    try:
        import uvloop
    except ImportError:
        outcome = asyncio.run(drive(config))
    else:
        outcome = uvloop.run(drive(config))
    json.dump(outcome, sys.stdout)
    return 0


# -- /proc: the server's CPU time and peak RSS ---------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's workers, when there are several)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += children.get(current, [])
    return tree


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants, in seconds."""
    ticks = 0
    for member in process_tree(pid):
        with suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """Peak resident set (VmHWM) of ``pid`` plus its descendants, in MiB."""
    kib = 0
    for member in process_tree(pid):
        with suppress(OSError, ValueError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    kib += int(line.split()[1])
    return kib / 1024


def reset_peak_rss(pid: int) -> None:
    """Resets VmHWM to the current RSS (``clear_refs`` 5), so the peak is the load's own."""
    for member in process_tree(pid):
        with suppress(OSError):
            Path(f"/proc/{member}/clear_refs").write_text("5")


# -- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """A server process under load, and what the load measured on it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    token: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    peak_rss: float = 0.0

    def phase(self, name: str) -> dict[str, Any]:
        """The runs of one phase merged: total elapsed and CPU, latencies and errors."""
        runs = [run for run in self.runs if run["phase"] == name]
        merged: dict[str, Any] = {
            "elapsed": sum(run["elapsed"] for run in runs),
            "cpu": sum(run["cpu"] for run in runs),
            "driver_cpu": sum(run["driver_cpu"] for run in runs),
            "latencies": {e: [x for run in runs for x in run["latencies"][e]] for e in ENDPOINTS},
            "errors": sum(sum(run["errors"].values()) for run in runs),
        }
        merged["requests"] = sum(len(v) for v in merged["latencies"].values())
        return merged


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(name: str, url: str, directory: Path, secret: str) -> Server:
    """Starts jobledger or the baseline on ``url``; returns once it answers /api/health."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBLEDGER_")}
    env.update({
        "JOBLEDGER_DATABASE_URL": url, "JOBLEDGER_JWT_SECRET": secret,
        "JOBLEDGER_DATA_DIR": str(directory / "var"), "JOBLEDGER_HOST": HOST,
        "JOBLEDGER_PORT": str(port), "PYTHONPATH": str(REPOSITORY),
    })
    if name == "jobledger":
        executable = Path(sys.executable).with_name("jobledger")
        command = [str(executable) if executable.exists() else "jobledger", "serve",
                   "--host", HOST, "--port", str(port), "--workers", str(WORKERS)]
    else:
        command = [sys.executable, "-m", "bench.crud_baseline", "--db", url, "--host", HOST,
                   "--port", str(port), "--workers", str(WORKERS)]
    log = directory / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(name, process, port, log)
    try:
        wait_until_healthy(server)
        server.token = setup_admin(server)
        reset_peak_rss(process.pid)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at startup:\n{_tail(server.log)}")
        with (
            suppress(OSError),
            urllib.request.urlopen(f"http://{HOST}:{server.port}/api/health", timeout=2),
        ):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer /api/health:\n{_tail(server.log)}")


def setup_admin(server: Server) -> str:
    """Creates the first admin with ``POST /api/v1/auth/setup``; returns its token."""
    body = json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode()
    request = urllib.request.Request(
        f"http://{HOST}:{server.port}/api/v1/auth/setup", data=body, method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        token: str = json.load(response)["accessToken"]
        return token


def stop_server(server: Server) -> None:
    """Reads the peak RSS, then stops the server (SIGTERM, then SIGKILL after a grace period)."""
    if server.process.poll() is None:
        server.peak_rss = peak_rss_mib(server.process.pid)
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(STOP_TIMEOUT_SECONDS)


def load(server: Server, phase: str, count: int, plan: Plan, *, record: bool = True) -> None:
    """Runs the driver process once against ``server``."""
    config = {"port": server.port, "token": server.token, "pid": server.process.pid,
              "clients": CLIENTS, "phase": phase, "count": count, "seconds": plan.run_seconds}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_http_load", json.dumps(config)],
        cwd=REPOSITORY, capture_output=True, check=False, timeout=plan.run_seconds + 60,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the load driver failed:\n{completed.stderr.decode()[-2000:]}")
    outcome = json.loads(completed.stdout)
    if server.process.poll() is not None:
        raise RuntimeError(f"{server.name} died under load:\n{_tail(server.log)}")
    if outcome["samples"]:
        print(f"http_load: {server.name} {phase}: unexpected answers {outcome['errors']}: "
              f"{outcome['samples'][:3]}")
    if outcome["timed_out"]:
        print(f"http_load: {server.name} {phase}: the run hit its {plan.run_seconds:.0f} s limit")
    if record:
        server.runs.append({**outcome, "phase": phase})


def _tail(path: Path, lines: int = 30) -> str:
    with suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# -- stores ---------------------------------------------------------------------------------


@contextmanager
def load_database() -> Iterator[str]:
    """A fresh PostgreSQL database ``jobledger_load_<random>`` (its URL), dropped afterwards."""
    def admin(statement: sql.Composed) -> None:
        try:
            connection = psycopg.connect(
                ADMIN_URL, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.OperationalError as error:
            raise PostgresUnavailable(f"PostgreSQL is not answering at {ADMIN_URL}: {error}") \
                from None
        with connection:
            connection.execute(statement)

    name = f"jobledger_load_{uuid.uuid4().hex[:16]}"
    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = Store.from_url(ADMIN_URL)
    credentials = f"{base.user}:{base.password}" if base.password else base.user
    try:
        yield f"postgresql://{credentials}@{base.host}:{base.port}/{name}"
    finally:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def measure_store(store: str, plan: Plan) -> tuple[Server, Server]:
    """Starts both servers on ``store``, loads them in turns; returns (jobledger, baseline)."""
    secret = secrets.token_urlsafe(48)
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jl_load_")))
        servers: list[Server] = []
        for name in ("jobledger", "baseline"):
            if store == "sqlite":
                url = f"sqlite:///{directory / name}.db"
            else:
                url = stack.enter_context(load_database())
            folder = directory / name
            folder.mkdir()
            server = start_server(name, url, folder, secret)
            stack.callback(stop_server, server)
            servers.append(server)
        jobledger, baseline = servers
        print(f"http_load: {store}: {CLIENTS} clients, {WORKERS} worker(s) per server; "
              f"{plan.rounds} mixed rounds x {plan.lifecycles} lifecycles/client, "
              f"{plan.list_rounds} list rounds x {plan.lists} lists/client")
        for server in servers if plan.warmup_lifecycles else ():
            load(server, "mixed", plan.warmup_lifecycles, plan, record=False)
        for index in range(plan.rounds):
            for server in servers if index % 2 == 0 else servers[::-1]:
                load(server, "mixed", plan.lifecycles, plan)
        for index in range(plan.list_rounds):
            for server in servers if index % 2 == 0 else servers[::-1]:
                load(server, "list", plan.lists, plan)
        for server in servers:
            stop_server(server)
            if os.environ.get("JOBLEDGER_BENCH_KEEP_LOGS"):
                shutil.copy(server.log, Path(tempfile.gettempdir()) / f"{store}-{server.log.name}")
        return jobledger, baseline


# -- figures --------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass(frozen=True)
class Summary:
    """One server's figures on one store."""

    writes_per_second: float
    write_p99: float
    requests_per_second: float
    lists_per_second: float
    list_p99: float
    cpu_ms_per_request: float
    driver_cpu_ms_per_request: float
    peak_rss: float
    endpoints: dict[str, tuple[int, float, float]]
    errors: int

    @classmethod
    def of(cls, server: Server) -> Summary:
        mixed, listing = server.phase("mixed"), server.phase("list")
        writes = [x for e in WRITE_ENDPOINTS for x in mixed["latencies"][e]]
        endpoints = {
            e: (len(v), percentile(v, 0.5), percentile(v, 0.99))
            for e, v in mixed["latencies"].items()
        }
        lists = listing["latencies"]["list"]
        endpoints["list (list phase)"] = (len(lists), percentile(lists, 0.5),
                                          percentile(lists, 0.99))
        requests = mixed["requests"] + listing["requests"]
        return cls(
            writes_per_second=len(writes) / mixed["elapsed"],
            write_p99=percentile(writes, 0.99),
            requests_per_second=mixed["requests"] / mixed["elapsed"],
            lists_per_second=len(lists) / listing["elapsed"],
            list_p99=percentile(lists, 0.99),
            cpu_ms_per_request=1000 * (mixed["cpu"] + listing["cpu"]) / max(requests, 1),
            driver_cpu_ms_per_request=(
                1000 * (mixed["driver_cpu"] + listing["driver_cpu"]) / max(requests, 1)
            ),
            peak_rss=server.peak_rss,
            endpoints=endpoints,
            errors=mixed["errors"] + listing["errors"],
        )


def figures_for(store: str, jobledger: Summary, baseline: Summary) -> list[Figure]:
    prefix = f"http_load {store}:"
    figures = [
        Figure.compare(f"{prefix} writes/s, 32 clients (target >= 1.0x)",
                       jobledger.writes_per_second, baseline.writes_per_second, "req/s"),
        Figure.compare(f"{prefix} write p99 (target <= 1.5x)",
                       jobledger.write_p99, baseline.write_p99, "ms"),
        Figure.compare(f"{prefix} lists/s, list phase (target >= 1.0x)",
                       jobledger.lists_per_second, baseline.lists_per_second, "req/s"),
        Figure.compare(f"{prefix} list p99, list phase",
                       jobledger.list_p99, baseline.list_p99, "ms"),
        Figure.compare(f"{prefix} all requests/s, mixed phase",
                       jobledger.requests_per_second, baseline.requests_per_second, "req/s"),
    ]
    for endpoint in ENDPOINTS:
        _, ours_p50, ours_p99 = jobledger.endpoints[endpoint]
        _, ref_p50, ref_p99 = baseline.endpoints[endpoint]
        figures.append(Figure.compare(f"{prefix} {endpoint} p50", ours_p50, ref_p50, "ms"))
        figures.append(Figure.compare(f"{prefix} {endpoint} p99", ours_p99, ref_p99, "ms"))
    figures += [
        Figure.compare(f"{prefix} server CPU per request", jobledger.cpu_ms_per_request,
                       baseline.cpu_ms_per_request, "ms"),
        Figure.compare(f"{prefix} server peak RSS", jobledger.peak_rss, baseline.peak_rss,
                       "MiB"),
    ]
    return figures


def print_endpoints(store: str, jobledger: Summary, baseline: Summary) -> None:
    table = Table(title=f"http_load {store}: latency per endpoint (ms), jobledger | baseline")
    for column in ("endpoint", "n", "p50", "p99", "n (base)", "p50 (base)", "p99 (base)"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for endpoint, (count, p50, p99) in jobledger.endpoints.items():
        ref_count, ref_p50, ref_p99 = baseline.endpoints[endpoint]
        table.add_row(endpoint, str(count), f"{p50:.1f}", f"{p99:.1f}", str(ref_count),
                      f"{ref_p50:.1f}", f"{ref_p99:.1f}")
    Console().print(table)
    for name, summary in (("jobledger", jobledger), ("baseline", baseline)):
        print(f"http_load {store} {name}: {summary.writes_per_second:,.0f} writes/s, "
              f"{summary.requests_per_second:,.0f} req/s mixed, {summary.lists_per_second:,.0f} "
              f"lists/s, server CPU {summary.cpu_ms_per_request:.2f} ms/req (driver "
              f"{summary.driver_cpu_ms_per_request:.2f}), peak RSS "
              f"{summary.peak_rss:.0f} MiB, {summary.errors} unexpected answers")


def run(quick: bool) -> list[Figure]:
    plan = QUICK if quick else FULL
    figures: list[Figure] = []
    for store in ("sqlite", "postgresql"):
        try:
            servers = measure_store(store, plan)
        except PostgresUnavailable as error:
            print(f"http_load: PostgreSQL skipped: {error}")
            continue
        jobledger, baseline = (Summary.of(server) for server in servers)
        print_endpoints(store, jobledger, baseline)
        for name, summary in (("jobledger", jobledger), ("baseline", baseline)):
            requests = sum(count for count, _, _ in summary.endpoints.values())
            if summary.errors > MAX_ERROR_FRACTION * requests:
                raise RuntimeError(f"{name} on {store}: {summary.errors} of {requests} requests "
                                   "got an unexpected answer; the figures would mislead")
        figures += figures_for(store, jobledger, baseline)
    return figures


if __name__ == "__main__":
    sys.exit(driver_main(sys.argv[1]))
