"""The four systems the peers benchmark drives: how each is set up, seeded, worked and fed, and
the SQL that reads its own record of each job (counts and timestamps).

jobledger: a ``jobledger serve`` process on the run's database (one uvicorn worker, as the other
HTTP benchmarks; ``JOBLEDGER_BENCH_HTTP_WORKERS`` changes it), ``jobledger worker`` with a
worker-role user's token, jobs seeded through a ``JobLedger`` in the benchmark process (16
threads; the drain starts once the view shows them all) and, in the steady workload, created
over HTTP. Its timestamps are the events' own (``job_summary.created_at`` / ``completed_at``).
The peers: their scripts in this folder, run from the peers' venv.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, ClassVar

import psycopg

from bench.bench_http_load import HOST, REQUEST_TIMEOUT_SECONDS, Server, start_server, stop_server
from bench.peers.venv import PEERS_DIR
from bench.results import REPOSITORY
from domain.ledger import JobLedger
from stores import Store

JOB_TYPE = "bench-noop"
SEED_THREADS = 16
SEED_VISIBLE_SECONDS = 300.0
COMMAND_TIMEOUT_SECONDS = 600.0
WORKER_EMAIL = "bench-worker@example.com"
WORKER_PASSWORD = "peers-benchmark-worker-password"


class System(ABC):
    """One system under test on one fresh database (``prepare`` first, then the rest)."""

    name: str
    label: str
    #: Jobs queued or running, as the system records them.
    unfinished_sql: str
    #: ``(created, completed)`` epoch seconds of every job that completed, from its own tables.
    completions_sql: str
    server_pid: int | None = None
    dsn: str = ""

    @abstractmethod
    def prepare(self, dsn: str, directory: Path, stack: ExitStack) -> None:
        """Creates the system's tables (and starts its server) on ``dsn``."""

    @abstractmethod
    def seed(self, jobs: int) -> None:
        """Inserts ``jobs`` no-op jobs, returning once a worker could see them all."""

    @abstractmethod
    def worker_command(self, concurrency: int) -> list[str]: ...

    @abstractmethod
    def steady_command(self) -> list[str]:
        """The producer's command, before the workload's own options."""

    def producer_environment(self) -> dict[str, str] | None:
        return None

    def completions(self) -> list[tuple[float, float]]:
        with psycopg.connect(self.dsn) as connection:
            rows = connection.execute(self.completions_sql).fetchall()
        return [(float(created), float(completed)) for created, completed in rows]


class Peer(System):
    """procrastinate, PgQueuer or Oban for Python, through ``bench/peers/<name>_peer.py``."""

    SQL: ClassVar[dict[str, tuple[str, str]]] = {
        "procrastinate": (
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE status = ANY(ARRAY['todo', 'doing']::procrastinate_job_status[])",
            "SELECT extract(epoch FROM d.at), extract(epoch FROM s.at) "
            "FROM procrastinate_events d JOIN procrastinate_events s "
            "ON s.job_id = d.job_id AND s.type = 'succeeded' WHERE d.type = 'deferred'",
        ),
        "pgqueuer": (
            "SELECT count(*) FROM pgqueuer",
            "SELECT extract(epoch FROM q.created), extract(epoch FROM s.created) "
            "FROM pgqueuer_log q JOIN pgqueuer_log s "
            "ON s.job_id = q.job_id AND s.status = 'successful' WHERE q.status = 'queued'",
        ),
        "oban": (
            "SELECT count(*) FROM oban_jobs WHERE state IN ('available', 'executing')",
            "SELECT extract(epoch FROM inserted_at), extract(epoch FROM completed_at) "
            "FROM oban_jobs WHERE state = 'completed'",
        ),
    }

    def __init__(self, name: str, version: str, python: Path) -> None:
        self.name = name
        self.label = f"{name} {version}"
        self.python = python
        self.script = PEERS_DIR / f"{name}_peer.py"
        self.unfinished_sql, self.completions_sql = self.SQL[name]

    def _command(self, command: str) -> list[str]:
        return [str(self.python), str(self.script), command, "--dsn", self.dsn]

    def _call(self, command: str, *options: str) -> None:
        done = subprocess.run(
            [*self._command(command), *options], cwd=PEERS_DIR, capture_output=True, text=True,
            check=False, timeout=COMMAND_TIMEOUT_SECONDS,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{self.name} {command} exited {done.returncode}: {done.stderr}")

    def prepare(self, dsn: str, directory: Path, stack: ExitStack) -> None:
        self.dsn = dsn
        self._call("install")

    def seed(self, jobs: int) -> None:
        self._call("seed", "--jobs", str(jobs))

    def worker_command(self, concurrency: int) -> list[str]:
        return [*self._command("worker"), "--concurrency", str(concurrency)]

    def steady_command(self) -> list[str]:
        return self._command("steady")


class Jobledger(System):
    """``jobledger serve`` and ``jobledger worker``, over HTTP on 127.0.0.1."""

    name = label = "jobledger"
    unfinished_sql = (
        "SELECT coalesce(sum(n), 0) FROM job_summary_counts "
        "WHERE dimension = 'status' AND key IN ('pending', 'processing', 'retrying')"
    )
    completions_sql = (
        "SELECT extract(epoch FROM created_at), extract(epoch FROM completed_at) "
        "FROM job_summary WHERE status = 'completed'"
    )

    def __init__(self, lease_seconds: float | None = None) -> None:
        self.lease_seconds = lease_seconds

    def prepare(self, dsn: str, directory: Path, stack: ExitStack) -> None:
        self.dsn = dsn
        folder = directory / "jobledger"
        folder.mkdir()
        self.server: Server = start_server("jobledger", dsn, folder, secrets.token_urlsafe(48))
        stack.callback(stop_server, self.server)
        self.server_pid = self.server.process.pid
        self.url = f"http://{HOST}:{self.server.port}"
        self.admin_token = _secret_file(folder / "admin.token", self.server.token)
        self._post("/api/v1/users", {"email": WORKER_EMAIL, "password": WORKER_PASSWORD,
                                     "role": "worker"})  # fmt: skip
        self.worker_token = _secret_file(folder / "worker.token", self._login())
        self.owner = self._get("/api/v1/auth/me")["id"]
        self.ledger = stack.enter_context(closing(JobLedger(env=Store.from_url(dsn).ledger_env())))

    def seed(self, jobs: int) -> None:
        def create(number: int) -> None:
            self.ledger.create_job(job_type=JOB_TYPE, data={"n": number}, actor=self.owner)

        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(create, range(jobs)))
        deadline = time.monotonic() + SEED_VISIBLE_SECONDS
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            while time.monotonic() < deadline:
                row = connection.execute(self.unfinished_sql).fetchone()
                if row and int(row[0]) >= jobs:
                    return
                time.sleep(0.1)
        raise RuntimeError(f"the view did not show {jobs:,} pending jobs within the time limit")

    def worker_command(self, concurrency: int) -> list[str]:
        executable = Path(sys.executable).with_name("jobledger")
        return [
            str(executable) if executable.exists() else "jobledger", "worker",
            "--url", self.url, "--token-file", str(self.worker_token),
            "--handlers", "jobledger_handlers:HANDLERS", "--concurrency", str(concurrency),
            *(["--lease-seconds", f"{self.lease_seconds:g}"] if self.lease_seconds else []),
        ]  # fmt: skip

    def steady_command(self) -> list[str]:
        return [
            sys.executable, str(PEERS_DIR / "jobledger_peer.py"), "steady", "--dsn", self.dsn,
            "--url", self.url, "--token-file", str(self.admin_token),
        ]  # fmt: skip

    def producer_environment(self) -> dict[str, str]:
        return {"PYTHONPATH": str(REPOSITORY)}

    def _login(self) -> str:
        form = urllib.parse.urlencode({"username": WORKER_EMAIL, "password": WORKER_PASSWORD})
        request = urllib.request.Request(
            f"{self.url}/api/v1/auth/token", data=form.encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            token: str = json.load(response)["access_token"]
            return token

    def _get(self, path: str) -> Any:
        return self._request("GET", path, None)

    def _post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.server.token}"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return json.load(response)


def _secret_file(path: Path, secret: str) -> Path:
    path.touch(mode=0o600)
    path.write_text(secret)
    return path
