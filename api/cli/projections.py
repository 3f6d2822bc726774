"""``jobledger projections status|rebuild|verify|run``: the read model's operator commands.

The store comes from ``JOBLEDGER_DATABASE_URL``. ``rebuild`` may run while ``serve`` runs: it
fills a shadow table and swaps it in atomically. ``verify`` first lets the view reach the log's
head (applying it itself when no runner is active), then compares every row with its job folded
by the domain: exit 0 when all match, 1 when some differ (listed), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console

from api.cli.progress import help_text, plain_console, progress_bar
from api.cli.store import WHERE_THE_STORE_IS, open_store_ledger
from domain.ledger import JobLedger
from projections import JobSummaryView, ProjectionRunner, open_view, rebuild, verify
from projections.rebuild import RebuildProgress
from stores import Store

MAX_LISTED_DIFFERENCES = 50
#: Passed leases counted by ``status`` before it says "N+".
OVERDUE_SHOWN = 1000

#: A command needs a few connections, not the API's pool (PostgreSQL only; ignored elsewhere).

Handler = Callable[[argparse.Namespace], int]


def _exit_2_on_error(handler: Handler) -> Handler:
    """Prints an error that stops a command (store down, timeout...) and exits 2."""

    @functools.wraps(handler)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except Exception as error:
            _error(plain_console(), error)
            return 2

    return guarded


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "projections",
        help="inspect, rebuild and verify the job_summary read model",
        description=help_text(__doc__.splitlines()[0]) + " " + WHERE_THE_STORE_IS,
    )
    commands = parser.add_subparsers(dest="projections_command", required=True, metavar="COMMAND")
    commands.add_parser(
        "status", help="position, head of the log, lag, and which runner holds the lock"
    ).set_defaults(handler=status)
    rebuild_parser = commands.add_parser(
        "rebuild", help="replay the whole log into a shadow table and swap it in"
    )
    rebuild_parser.add_argument(
        "--batch-size", type=_positive, default=500, help="events per transaction"
    )
    rebuild_parser.set_defaults(handler=rebuild_command)
    verify_parser = commands.add_parser(
        "verify", help="compare every row with its job folded from the events (exit 0, 1 or 2)"
    )
    verify_parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the view to catch up"
    )
    verify_parser.set_defaults(handler=verify_command)
    run_parser = commands.add_parser(
        "run", help="follow the log into the view until stopped (stands by while another runs)"
    )
    run_parser.add_argument(
        "--batch-size", type=_positive, default=500, help="events per transaction"
    )
    run_parser.set_defaults(handler=run_command)


@_exit_2_on_error
def status(args: argparse.Namespace) -> int:
    """Prints the view's position, the log's head, the lag and the active runner; 2 on failure."""
    console = plain_console()
    with _opened(console) as opened:
        if opened is None:
            return 2
        store, ledger, view = opened
        position, head = view.position(), ledger.head()
        counts = view.counts()
        console.print(f"store     {store.describe()}")
        console.print(f"position  {position:,}")
        console.print(f"head      {head:,}")
        console.print(f"lag       {max(head - position, 0):,} events")
        holder = view.runner_holder()
        console.print(f"runner    {holder or 'none active'}")
        console.print(f"sweeper   {_sweeper_line(holder)}")
        now = ledger.clock()
        console.print(f"leases    {_leases_line(view, now)}")
        console.print(f"overdue   {_overdue_line(view, now)}")
        statuses = ", ".join(f"{name} {n:,}" for name, n in counts.by_status.items())
        console.print(f"jobs      {counts.total:,} ({statuses})")
    return 0


def _sweeper_line(holder: str | None) -> str:
    if holder is None:
        return "none active (no runner): passed leases wait"
    return "runs beside the active runner, ending passed leases within 2 s"


def _leases_line(view: JobSummaryView[Any], now: datetime) -> str:
    """When the earliest lease passes (or passed: the sweeper's backlog, with ``_overdue``)."""
    upcoming = view.next_lease_expiry()
    if upcoming is None:
        return "none held"
    seconds = (upcoming - now).total_seconds()
    return (
        f"next passes in {seconds:.1f} s" if seconds > 0 else f"oldest passed {-seconds:.1f} s ago"
    )


def _overdue_line(view: JobSummaryView[Any], now: datetime) -> str:
    overdue = len(view.expired_leases(now, OVERDUE_SHOWN))
    if not overdue:
        return "none: no lease is past its time"
    more = "+" if overdue == OVERDUE_SHOWN else ""
    return f"{overdue}{more} leases passed, not yet ended by the sweeper"


@_exit_2_on_error
def rebuild_command(args: argparse.Namespace) -> int:
    """Rebuilds the view from the whole log with a progress bar; 2 on failure."""
    console = plain_console()
    with _opened(console) as opened:
        if opened is None:
            return 2
        _, ledger, view = opened
        with progress_bar(console, "rebuild", "events") as progress:
            task = progress.add_task("rebuild", total=ledger.head() or None)

            def advance(step: RebuildProgress) -> None:
                progress.update(task, completed=step.position, total=step.head)

            report = rebuild(ledger, view, batch_size=args.batch_size, on_progress=advance)
        console.print(
            f"rebuilt job_summary: {report.events:,} events, {report.jobs:,} jobs in "
            f"{report.seconds:.1f} s ({report.events_per_second:,.0f} events/s); "
            f"position {report.position:,}"
        )
    return 0


@_exit_2_on_error
def verify_command(args: argparse.Namespace) -> int:
    """Compares every row with its folded job: 0 all match, 1 some differ, 2 could not run."""
    console = plain_console()
    with _opened(console) as opened:
        if opened is None:
            return 2
        _, ledger, view = opened

        head = ledger.head()
        ProjectionRunner(ledger, view).catch_up(timeout=args.timeout)
        with progress_bar(console, "verify", "rows") as progress:
            task = progress.add_task("verify", total=view.counts().total or None)
            report = verify(
                ledger, view, head, on_progress=lambda n: progress.update(task, completed=n)
            )
        if report.ok:
            console.print(
                f"verify: all {report.jobs:,} rows match their jobs (head {report.head:,})"
            )
            return 0
        console.print(
            f"verify: {len(report.differences):,} differences in {report.jobs:,} rows "
            f"(head {report.head:,}):",
            style="red",
        )
        for line in report.differences[:MAX_LISTED_DIFFERENCES]:
            console.print(f"  {line}", markup=False, highlight=False)
        if len(report.differences) > MAX_LISTED_DIFFERENCES:
            console.print(f"  ... and {len(report.differences) - MAX_LISTED_DIFFERENCES:,} more")
        return 1


@_exit_2_on_error
def run_command(args: argparse.Namespace) -> int:
    """Follows the log until SIGINT or SIGTERM; 2 when the store cannot be opened."""
    console = plain_console()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _opened(console) as opened:
        if opened is None:
            return 2
        store, ledger, view = opened
        runner = ProjectionRunner(ledger, view, batch_size=args.batch_size).start()
        console.print(f"runner started on {store.describe()}; standing by until it holds the lock")
        announced = False
        try:
            while not stop.wait(0.02):
                if runner.active and not announced:
                    console.print(f"runner active at position {view.position():,}")
                    announced = True
        except KeyboardInterrupt:
            pass
        finally:
            runner.stop()
        console.print(f"runner stopped at position {view.position():,}")
    return 0


@contextmanager
def _opened(console: Console) -> Iterator[tuple[Store, JobLedger, JobSummaryView[Any]] | None]:
    """The store, its ledger and its view (None, after printing why, when they cannot open)."""
    try:
        store, ledger = open_store_ledger()
    except Exception as error:
        _error(console, error)
        yield None
        return
    try:
        try:
            view = open_view(store)
        except Exception as error:
            _error(console, error)
            yield None
            return
        try:
            if store.kind == "memory":
                console.print(
                    "note: memory:// keeps nothing between processes; this store is empty"
                )
            yield store, ledger, view
        finally:
            view.close()
    finally:
        ledger.close()


def _error(console: Console, error: BaseException) -> None:
    print(f"jobledger projections: {type(error).__name__}: {error}", file=sys.stderr)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """``python -m api.cli.projections COMMAND``: these commands alone (a quicker start)."""
    parser = argparse.ArgumentParser(prog="python -m api.cli.projections")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(["projections", *(sys.argv[1:] if argv is None else argv)])
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
