"""Fixtures of the reliability tests: the ``soak`` marker and a private PostgreSQL instance.

``private_postgres`` runs a PostgreSQL server of its own (``initdb`` into a temporary folder,
trust auth, a free port on 127.0.0.1), so a test may stop and restart it without touching the
machine's shared server. As root it runs as the ``postgres`` user (initdb refuses root). Like
the other PostgreSQL tests it skips when it cannot run, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.reliability.serving import HOST, free_port

POSTGRES_BIN = Path(os.environ.get("JOBLEDGER_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
START_SECONDS = 30


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: a long run checking for leaks (sized to finish in ~1 minute in make test)"
    )


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true makes PostgreSQL tests mandatory)")
    pytest.skip(message)


class PrivatePostgres:
    """A PostgreSQL server in a temporary folder, on its own port; ``stop()`` and ``start()``."""

    def __init__(self, folder: Path, user: str | None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.user = user
        self.log = folder / "postgres.log"

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout,
            cwd=self.folder,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stdout}\n{result.stderr}")

    def init(self) -> None:
        self._run(str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "--no-sync", "--no-instructions")  # fmt: skip

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} "
                   "-c fsync=off -c max_connections=60")  # fmt: skip
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", str(START_SECONDS), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                  "stop")  # fmt: skip

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server, stopped and deleted after the test."""
    if not (POSTGRES_BIN / "initdb").exists():
        _unavailable(f"no initdb in {POSTGRES_BIN} (set JOBLEDGER_TEST_POSTGRES_BIN)")
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            _unavailable("running as root and there is no postgres user to run initdb as")
    folder = Path(tempfile.mkdtemp(prefix="jobledger-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = PrivatePostgres(folder, user)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            if server.running():
                server.stop("immediate")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
