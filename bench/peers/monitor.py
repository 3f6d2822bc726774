"""What a run costs, sampled every 0.2 s: CPU seconds of the worker, the server and the
PostgreSQL backends, and how many jobs are unfinished.

CPU is ``/proc/<pid>/stat`` utime + stime, in seconds, of each process and its descendants
(the trees are re-read every 2 s, so a new child is counted soon after it starts). The backends
are those ``pg_stat_activity`` shows connected to the run's database, except the monitor's own:
each backend's last reading is kept after it disconnects, so the sum only ever grows. A figure
over a window takes each series at the window's ends, linearly between the nearest samples.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.bench_http_load import process_tree

SAMPLE_SECONDS = 0.2
TREE_SECONDS = 2.0
BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each pid still running, in seconds."""
    readings: dict[int, float] = {}
    for pid in pids:
        with suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            readings[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return readings


@dataclass(frozen=True)
class Sample:
    """One reading: when (epoch seconds), CPU seconds so far, and unfinished jobs."""

    at: float
    worker: float
    server: float
    postgres: float
    unfinished: int


@dataclass
class Tree:
    """A process and its descendants, re-listed every ``TREE_SECONDS``, with each member's last
    CPU reading kept after it exits."""

    root: int | None
    members: list[int] = field(default_factory=list)
    listed: float = 0.0
    last: dict[int, float] = field(default_factory=dict)

    def cpu(self) -> float:
        if self.root is None:
            return 0.0
        if time.monotonic() - self.listed > TREE_SECONDS:
            self.members, self.listed = process_tree(self.root), time.monotonic()
        self.last.update(cpu_seconds(self.members))
        return sum(self.last.values())


class Monitor:
    """Samples a run in a thread of its own until ``stop()``; ``samples`` holds the readings."""

    def __init__(
        self, dsn: str, unfinished_sql: str, worker_pid: int, server_pid: int | None
    ) -> None:
        self.connection: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self.own_pid = self.connection.info.backend_pid
        self.unfinished_sql = unfinished_sql
        self.server = Tree(server_pid)
        self.worker = Tree(worker_pid)
        self.backends: dict[int, float] = {}
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peers-monitor", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Monitor:
        self.sample()
        self._thread.start()
        return self

    @property
    def unfinished(self) -> int:
        return self.samples[-1].unfinished if self.samples else -1

    def sample(self) -> None:
        pids = [row[0] for row in self.connection.execute(BACKENDS, (self.own_pid,))]
        self.backends.update(cpu_seconds(pids))
        row = self.connection.execute(self.unfinished_sql).fetchone()
        self.samples.append(
            Sample(
                at=time.time(),
                worker=self.worker.cpu(),
                server=self.server.cpu(),
                postgres=sum(self.backends.values()),
                unfinished=int(row[0]) if row else 0,
            )
        )

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                self.sample()
            except (psycopg.Error, OSError) as error:
                self.error = error
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        with suppress(psycopg.Error):
            self.sample()
        self.connection.close()

    def cpu_between(self, start: float, end: float) -> tuple[float, float, float]:
        """Worker, server and PostgreSQL CPU seconds spent between two epoch instants."""
        low, high = self.at(start), self.at(end)
        return high[0] - low[0], high[1] - low[1], high[2] - low[2]

    def at(self, moment: float) -> tuple[float, float, float]:
        """The three CPU series at ``moment``, interpolated between the samples around it."""
        times = [sample.at for sample in self.samples]
        index = min(max(bisect_left(times, moment), 1), len(times) - 1)
        before, after = self.samples[index - 1], self.samples[index]
        span = after.at - before.at
        share = min(max((moment - before.at) / span, 0.0), 1.0) if span > 0 else 1.0
        return (
            before.worker + share * (after.worker - before.worker),
            before.server + share * (after.server - before.server),
            before.postgres + share * (after.postgres - before.postgres),
        )
