"""What every system's driver script shares: its command line and the steady producer.

The scripts run as ``python bench/peers/<system>_peer.py COMMAND ...``: the peers' from
``bench/out/peers-venv`` (Python 3.12), jobledger's from the project's venv, so this module needs
the standard library and psycopg only. Commands:

- ``install``: create the system's tables in the (fresh, empty) database.
- ``seed --jobs N``: insert N no-op jobs with the system's own bulk insert.
- ``worker --concurrency N``: run the system's own worker on them until SIGTERM.
- ``steady --seconds S --warmup W --depth D --producers P --unfinished-sql Q``: insert one job
  per call from P producers for W + S seconds, never more than D jobs unfinished (counted by
  Q), then print one JSON line: the measured window (epoch seconds, after the warm-up), jobs
  inserted, and the mean depth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

import psycopg

#: The job type (task, entrypoint, worker) every system runs.
JOB_NAME = "bench-noop"
SEED_CHUNK = 1_000
#: How often a producer reads how many jobs are unfinished.
DEPTH_POLL_SECONDS = 0.01

Insert = Callable[[int], Awaitable[None]]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("install", "seed", "worker", "steady"))
    parser.add_argument("--dsn", required=True, help="the system's PostgreSQL database")
    parser.add_argument("--url", help="jobledger only: the API's base URL")
    parser.add_argument("--token-file", help="jobledger only: the bearer token's file")
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--depth", type=int, default=40)
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument(
        "--unfinished-sql", default="", help="steady: counts the jobs queued or running"
    )
    return parser.parse_args(argv)


def run(coroutine: Coroutine[object, object, object], *, uvloop: bool = True) -> None:
    """Runs the command on uvloop (as PgQueuer's and Oban's own command lines do) or on the
    standard loop (as procrastinate's does)."""
    if not uvloop:
        asyncio.run(coroutine)
        return
    import uvloop as loops

    loops.run(coroutine)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (for peers whose worker is told to stop in code)."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    return stopped


def chunks(total: int, size: int = SEED_CHUNK) -> list[range]:
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


@dataclass
class Depth:
    """Jobs unfinished as the producers see them: the last count read, plus the jobs inserted
    since that read started (the count may or may not include those)."""

    counted: int = 0
    inserted: int = 0
    inserted_at_count: int = 0
    samples: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def estimate(self) -> int:
        return self.counted + self.inserted - self.inserted_at_count


async def steady(args: argparse.Namespace, inserters: list[Insert]) -> None:
    """Runs one producer per inserter (each its own connection) for the warm-up and the window,
    then prints the window as JSON. ``--unfinished-sql`` (the benchmark's, which owns every
    query that measures) counts the jobs inserted and not yet finished."""
    depth = Depth()
    async with await psycopg.AsyncConnection.connect(args.dsn, autocommit=True) as connection:
        window_start = time.monotonic() + args.warmup
        window_epoch = time.time() + args.warmup
        deadline = window_start + args.seconds
        inserted_in_window = 0

        async def count() -> None:
            while time.monotonic() < deadline:
                mark = depth.inserted
                cursor = await connection.execute(args.unfinished_sql)
                row = await cursor.fetchone()
                depth.counted, depth.inserted_at_count = int(row[0]) if row else 0, mark
                if time.monotonic() >= window_start:
                    depth.samples.append(depth.counted)
                changed, depth.changed = depth.changed, asyncio.Event()
                changed.set()
                await asyncio.sleep(DEPTH_POLL_SECONDS)
            depth.changed.set()

        async def produce(insert: Insert) -> None:
            nonlocal inserted_in_window
            while (now := time.monotonic()) < deadline:
                if depth.estimate >= args.depth:
                    await depth.changed.wait()
                    continue
                number = depth.inserted
                depth.inserted += 1
                inserted_in_window += now >= window_start
                await insert(number)

        await asyncio.gather(count(), *(produce(insert) for insert in inserters))
    samples = depth.samples or [0]
    print(json.dumps({
        "window_start": window_epoch,
        "window_end": window_epoch + args.seconds,
        "inserted": depth.inserted,
        "inserted_in_window": inserted_in_window,
        "mean_depth": sum(samples) / len(samples),
        "depth_bound": args.depth,
    }), flush=True)  # fmt: skip
