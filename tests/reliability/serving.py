"""What the server fault tests share: a ``jobledger serve`` process, 32 clients, and the checks.

- ``ServeProcess``: a real ``jobledger serve`` on a free 127.0.0.1 port; ``kill()`` is SIGKILL,
  ``stop()`` is SIGTERM, ``rss()`` reads the process's resident set from ``/proc``.
- ``Traffic``: client threads (one keep-alive ``httpx.Client`` each) running job lifecycles
  (create, start, progress updates, complete) until stopped, bounded in requests and time. Every
  2xx is an acknowledgement, kept as (job id, version, event type); any other answer abandons
  that job (its outcome is unknown) and the client starts a new one.
- ``check_acknowledged``: reads the store's whole notification log directly (not through the
  API), and asserts that no aggregate has a version gap and that every acknowledged command is
  there, at its version, with its event type.
- ``verify_projection``: runs ``jobledger projections verify`` and asserts it exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from domain.ledger import JobLedger
from stores import Store

HOST = "127.0.0.1"
ADMIN_EMAIL = "faults-admin@example.com"
PASSWORD = "fault tests password"
JWT_SECRET = "fault-tests-secret-that-is-long-enough-0123456789"
STARTUP_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
TOTAL_ITEMS = 1_000
PROGRESS_UPDATES = 6
#: Longest pause a client takes when told ``Retry-After`` (the tests stay short).
MAX_CLIENT_PAUSE_SECONDS = 0.25
EVENT_TYPES = {"create": "Created", "start": "Started", "progress": "ProgressUpdated",
               "complete": "Completed"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class ServeProcess:
    """A ``jobledger serve`` subprocess on a free port of 127.0.0.1."""

    def __init__(self, store_url: str, workdir: Path, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        env = {
            **os.environ,
            "JOBLEDGER_DATABASE_URL": store_url,
            "JOBLEDGER_DATA_DIR": str(workdir / "data"),
            "JOBLEDGER_JWT_SECRET": JWT_SECRET,
            **(extra_env or {}),
        }
        command = [str(Path(sys.executable).with_name("jobledger")), "serve", "--host", HOST,
                   "--port", str(self.port)]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early:\n{self.output()}"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not answer in {STARTUP_SECONDS} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss(self) -> int:
        """The server's resident set size in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing finishes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def unexpected_errors(self) -> list[str]:
        """Lines of the server log that report an unexpected error (a 500)."""
        return [line for line in self.output().splitlines() if "Unexpected error" in line]


def admin_token(base_url: str) -> str:
    """Creates the first admin (once per store) and returns a token for it."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
        setup = http.post("/api/v1/auth/setup", json={"email": ADMIN_EMAIL, "password": PASSWORD})
        assert setup.status_code == 201, setup.text
        token: str = setup.json()["accessToken"]
        return token


@dataclass(frozen=True, slots=True)
class Ack:
    """A command the server acknowledged with a 2xx: its event must be in the job's history."""

    job_id: UUID
    version: int
    event_type: str


@dataclass
class Outcomes:
    """What the clients saw, shared by their threads (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: list[Ack] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    #: Answers that break the contract: a 5xx other than 503, a 503 without Retry-After...
    bad: list[str] = field(default_factory=list)
    #: Seconds each 503 took to come back.
    unavailable_seconds: list[float] = field(default_factory=list)
    #: The longest any answer took, in seconds, and when (``time.monotonic()``) it came.
    slowest: tuple[float, float] = (0.0, 0.0)
    requests: int = 0

    def total(self) -> int:
        with self.lock:
            return self.requests


class Traffic:
    """``clients`` threads running job lifecycles against ``base_url`` until stopped.

    ``transport_errors_ok``: whether a refused or reset connection is expected (the server is
    being killed); otherwise it is recorded as a bad outcome, like a timeout always is.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        clients: int = 32,
        max_requests: int = 50_000,
        max_seconds: float = 60.0,
        transport_errors_ok: bool = False,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        outcomes: Outcomes | None = None,
    ) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.transport_errors_ok = transport_errors_ok
        self.timeout = timeout
        self.outcomes = outcomes or Outcomes()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._client, args=(n,), name=f"client-{n}", daemon=True)
            for n in range(clients)
        ]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(self.timeout + 5)
        assert not any(thread.is_alive() for thread in self.threads), "a client hung"

    def wait_for_requests(self, count: int, timeout: float = 60.0) -> None:
        """Waits until the clients have sent ``count`` requests in all."""
        deadline = time.monotonic() + timeout
        while self.outcomes.total() < count:
            assert time.monotonic() < deadline, f"fewer than {count} requests in {timeout} s"
            assert any(t.is_alive() for t in self.threads), "every client stopped"
            time.sleep(0.01)

    def _running(self) -> bool:
        return (
            not self.stopping.is_set()
            and time.monotonic() < self.deadline
            and self.outcomes.total() < self.max_requests
        )

    def _client(self, number: int) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers,
                          timeout=self.timeout) as http:  # fmt: skip
            while self._running():
                self._lifecycle(http, number)

    def _lifecycle(self, http: httpx.Client, number: int) -> None:
        job = self._command(http, "create", "/api/v1/jobs",
                            {"type": f"fault-{number % 4}", "totalItems": TOTAL_ITEMS})  # fmt: skip
        if job is None:
            return
        url = f"/api/v1/jobs/{job['id']}"
        steps: list[tuple[str, str, Any]] = [("start", f"{url}/start", None)]
        steps += [
            ("progress", f"{url}/progress", {"processedItems": n * 100})
            for n in range(1, PROGRESS_UPDATES + 1)
        ]
        steps.append(("complete", f"{url}/complete", {"result": {"client": number}}))
        for name, path, body in steps:
            if not self._running() or self._command(http, name, path, body) is None:
                return

    def _command(self, http: httpx.Client, name: str, path: str, body: Any) -> Any:
        """Sends one command; the job JSON on a 2xx, None otherwise (the job is abandoned)."""
        outcomes = self.outcomes
        with outcomes.lock:
            if outcomes.requests >= self.max_requests:
                return None
            outcomes.requests += 1
        started = time.monotonic()
        try:
            response = http.post(path, json=body)
        except httpx.TimeoutException as error:
            self._record(f"{name}: no answer in {self.timeout} s ({type(error).__name__})")
            return None
        except httpx.TransportError as error:
            if self.transport_errors_ok:
                with outcomes.lock:
                    outcomes.statuses["transport"] += 1
            else:
                self._record(f"{name}: {type(error).__name__}: {error}")
            time.sleep(0.05)
            return None
        elapsed = time.monotonic() - started
        status = response.status_code
        with outcomes.lock:
            outcomes.statuses[str(status)] += 1
            if elapsed > outcomes.slowest[0]:
                outcomes.slowest = (elapsed, started + elapsed)
        if 200 <= status < 300:
            job = response.json()
            ack = Ack(UUID(job["id"]), int(job["version"]), EVENT_TYPES[name])
            with outcomes.lock:
                outcomes.acks.append(ack)
            return job
        if status == 503:
            retry_after = response.headers.get("retry-after", "")
            with outcomes.lock:
                outcomes.unavailable_seconds.append(elapsed)
            if not retry_after.isdigit():
                self._record(f"{name}: 503 without a Retry-After header")
            time.sleep(min(float(retry_after or 0), MAX_CLIENT_PAUSE_SECONDS))
            return None
        self._record(f"{name}: {status} {response.text[:300]}")
        return None

    def _record(self, problem: str) -> None:
        with self.outcomes.lock:
            self.outcomes.bad.append(problem)
            self.outcomes.statuses["bad"] += 1


def check_acknowledged(store_url: str, acks: list[Ack]) -> int:
    """Asserts: no aggregate has a version gap; every ack is in its job's history. Returns the
    number of events read."""
    ledger = JobLedger(env=Store.from_url(store_url).ledger_env())
    try:
        versions: dict[UUID, dict[int, str]] = defaultdict(dict)
        position, events = 0, 0
        while True:
            page = ledger.recorder.select_notifications(position + 1, 1_000)
            if not page:
                break
            for notification in page:
                originator = UUID(str(notification.originator_id))
                versions[originator][notification.originator_version] = notification.topic
            position = page[-1].id
            events += len(page)
    finally:
        ledger.close()
    gaps = {
        str(originator): sorted(history)
        for originator, history in versions.items()
        if sorted(history) != list(range(1, len(history) + 1))
    }
    assert not gaps, f"version gaps: {dict(list(gaps.items())[:5])}"
    missing = [
        ack for ack in acks
        if not versions.get(ack.job_id, {}).get(ack.version, "").endswith(f".{ack.event_type}")
    ]  # fmt: skip
    assert not missing, f"{len(missing)} acknowledged commands are not in the store: {missing[:5]}"
    return events


def verify_projection(store_url: str) -> None:
    """Runs ``jobledger projections verify`` on the store and asserts it exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "api.cli.projections", "verify", "--timeout", "60"],
        env={**os.environ, "JOBLEDGER_DATABASE_URL": store_url},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, f"verify exited {result.returncode}:\n{result.stdout}\n" \
                                   f"{result.stderr}"  # fmt: skip


def current(base_url: str, token: str, catch_up_seconds: float = 1.0) -> bool:
    """Whether the server takes a command now and its read model then catches up with the log
    as it was after that command (under load the lag is seldom exactly 0 at any one instant)."""
    try:
        created = httpx.post(f"{base_url}/api/v1/jobs", json={"type": "probe"}, timeout=5,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        if created.status_code != 201:
            return False
        health = httpx.get(f"{base_url}/api/health", timeout=5)
        if health.status_code != 200:
            return False
        head = health.json()["projection"]["head"]
        deadline = time.monotonic() + catch_up_seconds
        while health.status_code == 200 and health.json()["projection"]["position"] < head:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
            health = httpx.get(f"{base_url}/api/health", timeout=5)
    except httpx.TransportError:
        return False
    return health.status_code == 200
