"""Profiles the jobledger side of the write-path benchmark (not a benchmark: not discovered).

``python -m bench.profile_write_path --store sqlite|postgresql [--jobs N] [--tool TOOL]``
(TOOL: pyinstrument, the default, or cprofile) drives ``N`` jobs through the 13-command
lifecycle on a fresh store, exactly as ``bench_write_path`` does, under a profiler, and prints
where the time goes, with a per-command breakdown of the known hot spots.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Literal

from pyinstrument import Profiler
from pyinstrument.frame import Frame

from bench.bench_write_path import COMMANDS_PER_JOB, WARMUP_JOBS, LedgerService, drive
from bench.support import postgres_database, sqlite_directory

Tool = Literal["pyinstrument", "cprofile"]

#: (label, qualified function names): each row sums the outermost frames matching any name.
HOT_SPOTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("load: Repository.get", ("Repository.get",)),
    ("  deepcopy of the cached job", ("deepcopy",)),
    ("  fast-forward SELECT (select_events)", ("select_events",)),
    ("  project_aggregate (decode + apply)", ("project_aggregate",)),
    ("    event decode (to_domain_event)", ("to_domain_event",)),
    ("  fast-forward lock bookkeeping", ("_use_fastforward_lock", "_disuse_fastforward_lock")),
    ("cache copy (Job.clone)", ("Job.clone",)),
    ("command: Job method", ("Job.create", "Job.start", "Job.update_progress", "Job.complete")),
    ("save: Application.save", ("JobLedger.save",)),
    ("  collect_events", ("collect_events",)),
    ("  event encode (to_stored_event)", ("to_stored_event",)),
    ("  insert_events", ("insert_events",)),
    ("    time-index INSERT", ("executemany", "PostgresTimeIndexedRecorder._insert_events")),
    ("    SQLite COMMIT (fsync)", ("SQLiteConnection.commit",)),
    ("    psycopg parameter dump + query render", ("Cursor._convert_query",)),
    ("    PG pipeline enter (sync)", ("Pipeline.__enter__",)),
    ("    PG LOCK TABLE", ("_lock_table",)),
    ("    PG NOTIFY", ("_notify_channel",)),
    ("    PG INSERT + sync", ("Pipeline.sync", "PostgresAggregateRecorder._insert_stored_events")),
    ("    PG pipeline exit (COMMIT)", ("Pipeline.__exit__",)),
    ("  _take_snapshots", ("_take_snapshots",)),
    ("  _notify", ("_notify",)),
    ("connection pool get/put", ("get_connection", "getconn", "putconn")),
    ("runtime Protocol isinstance checks", ("__instancecheck__",)),
)


@contextmanager
def ledger_on(store: str) -> Iterator[LedgerService]:
    """A LedgerService on a fresh store of the given kind."""
    if store == "sqlite":
        with (
            sqlite_directory() as directory,
            closing(LedgerService(f"sqlite:///{directory / 'jobledger.db'}")) as ledger,
        ):
            yield ledger
    else:
        with postgres_database() as url, closing(LedgerService(url)) as ledger:
            yield ledger


def profile(work: Callable[[], int], tool: Tool) -> None:
    """Runs ``work`` under ``tool`` and prints the profile."""
    if tool == "pyinstrument":
        profiler = Profiler(interval=0.0005)
        profiler.start()
        commands = work()
        profiler.stop()
        print(profiler.output_text(show_all=True, time="percent_of_total"))
        root = profiler.last_session.root_frame() if profiler.last_session else None
        if root is not None:
            print_hot_spots(root, commands)
    else:
        cprofiler = cProfile.Profile()
        commands = cprofiler.runcall(work)
        pstats.Stats(cprofiler).sort_stats("cumulative").print_stats(45)
    print(f"{commands:,} commands profiled")


def print_hot_spots(root: Frame, commands: int) -> None:
    """Prints each hot spot's share of the profiled time and its microseconds per command."""
    print(f"{'hot spot':<44} {'share':>7} {'us/command':>11}")
    for label, names in HOT_SPOTS:
        seconds = outermost_time(root, names)
        if seconds:
            share = seconds / root.time
            print(f"{label:<44} {share:>7.1%} {seconds / commands * 1e6:>11.1f}")
    print(f"{'total':<44} {1:>7.1%} {root.time / commands * 1e6:>11.1f}")


def outermost_time(frame: Frame, names: tuple[str, ...]) -> float:
    """Total time of the frames matching ``names`` that have no matching ancestor."""
    if _matches(frame, names):
        return frame.time
    return sum(outermost_time(child, names) for child in frame.children)


def _matches(frame: Frame, names: tuple[str, ...]) -> bool:
    qualified = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    return any(qualified == name or qualified.endswith(f".{name}") for name in names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_write_path")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--tool", choices=("pyinstrument", "cprofile"), default="pyinstrument")
    args = parser.parse_args(argv)
    with ledger_on(args.store) as ledger:
        drive(ledger, WARMUP_JOBS)
        print(f"profiling {args.jobs:,} jobs x {COMMANDS_PER_JOB} commands on {args.store}")
        profile(lambda: drive(ledger, args.jobs), args.tool)


if __name__ == "__main__":
    main()
