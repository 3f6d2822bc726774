"""``jobledger history``: a job's timeline, its state at a version or an instant, or the whole log.

    jobledger history JOB_ID [--json]               the job's events, oldest first
    jobledger history JOB_ID --as-of-version N      the job as it was after version N
    jobledger history JOB_ID --as-of TIME           ... after every event at or before TIME
    jobledger history --all [--since TIME] --json   every event of the log, in log order

The store comes from ``JOBLEDGER_DATABASE_URL``. ``--json`` prints one JSON object per line (the
HTTP API's field names). The command line reads the store directly, so it shows every actor's
email; secrets (password hashes) never appear. Timelines and the export are read page by page:
memory stays flat however long the history. Exit status: 0 done, 1 no such job (or not yet at that
time), 2 bad input or the store could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from api.cli.progress import help_text, plain_console, progress_bar
from api.cli.store import WHERE_THE_STORE_IS, NoStoreError, open_store_ledger
from api.schemas.history import ActorEmails, HistoryEvent, history_data
from api.schemas.jobs import JobOut
from api.settings import configured_store
from domain.audit import MAX_HISTORY_PAGE, HistoryEntry
from domain.errors import (
    InvalidInputError,
    JobLedgerError,
    JobNotFoundError,
    UserNotFoundError,
)
from domain.ledger import JobLedger
from stores import StoreURLError

MAX_CHANGE_CHARS = 60
PROG = "jobledger history"


class BadInput(Exception):
    """Raised when the arguments cannot be used (exit status 2)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        help="a job's timeline or past state, or every event of the log (--all)",
        description=help_text(__doc__.splitlines()[0]) + " " + WHERE_THE_STORE_IS,
    )
    parser.add_argument("job_id", nargs="?", metavar="JOB_ID", help="the job's id (a UUID)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    moment = parser.add_mutually_exclusive_group()
    moment.add_argument("--as-of-version", type=int, metavar="N",
                        help="print the job as it was after version N")
    moment.add_argument("--as-of", metavar="TIME",
                        help="print the job after every event at or before TIME (ISO 8601)")
    parser.add_argument("--all", action="store_true",
                        help="every event of the log, in log order (for export)")
    parser.add_argument("--since", metavar="TIME",
                        help="with --all: only events at or after TIME (ISO 8601)")
    parser.set_defaults(handler=history_command)


def history_command(args: argparse.Namespace) -> int:
    """Prints what was asked; 0 done, 1 not found, 2 bad input or store unreadable."""
    try:
        _check(args)
        with open_ledger() as ledger:
            _dispatch(args, ledger, sys.stdout)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except (JobNotFoundError, UserNotFoundError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except (BadInput, InvalidInputError, StoreURLError, NoStoreError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except (JobLedgerError, PersistenceError, OSError) as error:
        print(f"{PROG}: could not read the store: {error}", file=sys.stderr)
        return 2
    return 0


def open_ledger() -> JobLedger:
    """The configured store's ledger (use it in a ``with`` block)."""
    store = configured_store()
    try:
        return open_store_ledger()[1]
    except Exception as error:
        raise BadInput(f"could not open the store {store.describe()}: {error}") from error


def _check(args: argparse.Namespace) -> None:
    if args.all:
        if args.job_id is not None:
            raise BadInput("give either JOB_ID or --all, not both")
        if args.as_of_version is not None or args.as_of is not None:
            raise BadInput("--as-of and --as-of-version need a JOB_ID, not --all")
        return
    if args.job_id is None:
        raise BadInput("give a JOB_ID, or --all for every event of the log")
    if args.since is not None:
        raise BadInput("--since goes with --all (for one job, page with --as-of or read it all)")
    args.job_uuid = _uuid(args.job_id)


def _dispatch(args: argparse.Namespace, ledger: JobLedger, out: TextIO) -> None:
    emails = ActorEmails(ledger)
    if args.all:
        since = None if args.since is None else parse_time(args.since, "--since")
        console = plain_console(stderr=True)
        with progress_bar(console, "export", "events") as progress:
            task = progress.add_task("export", total=ledger.head() or None)
            _write(out, _export_lines(
                ledger, since, emails, as_json=args.json,
                on_position=lambda n: progress.update(task, completed=n),
            ))  # fmt: skip
    elif args.as_of_version is not None or args.as_of is not None:
        at = None if args.as_of is None else parse_time(args.as_of, "--as-of")
        job = ledger.job_as_of(args.job_uuid, version=args.as_of_version, at=at)
        state = JobOut.of(job).model_dump(mode="json", by_alias=True)
        _write(out, [json.dumps(state)] if args.json else _state_lines(state))
    else:
        entries = _pages(ledger, args.job_uuid)
        if args.json:
            _write(out, (json.dumps({"jobId": str(args.job_uuid), **_event(e, emails)})
                         for e in entries))
        else:
            _write(out, _timeline(args.job_uuid, entries, emails))


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 instant with a time zone, in UTC; BadInput otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{option} {text!r} is not an ISO 8601 time "
                       "(like 2026-03-01T14:02:00Z)") from None
    if moment.tzinfo is None:
        raise BadInput(f"{option} {text!r} needs a time zone (for example Z or +02:00)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadInput(f"{option} {text!r} is out of range") from None


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise BadInput(f"{text[:100]!r} is not a job id (a UUID)") from None


def _pages(ledger: JobLedger, job_id: UUID) -> Iterator[HistoryEntry]:
    """The job's events, read a page at a time."""
    first = 1
    while True:
        page = ledger.history(job_id, from_version=first, limit=MAX_HISTORY_PAGE)
        yield from page
        if len(page) < MAX_HISTORY_PAGE:
            return
        first = page[-1].version + 1


def _event(entry: HistoryEntry, emails: ActorEmails) -> dict[str, Any]:
    event = HistoryEvent(
        version=entry.version, type=entry.type, at=entry.at, actor=entry.actor,
        actor_email=emails.email(entry.actor), data=history_data(entry.data),
    )
    return event.model_dump(mode="json", by_alias=True)


def _timeline(job_id: UUID, entries: Iterable[HistoryEntry], emails: ActorEmails) -> Iterator[str]:
    yield f"Job {job_id}"
    yield f"{'ver':>5}  {'time (UTC)':<27}  {'event':<15}  {'actor':<30}  what changed"
    for entry in entries:
        event = _event(entry, emails)
        actor = event["actorEmail"] or event["actor"]
        yield (f"{event['version']:>5}  {event['at']:<27}  {event['type']:<15}  {actor:<30}  "
               f"{_changes(event['data'])}")


def _changes(data: dict[str, Any]) -> str:
    parts = []
    for name, value in data.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > MAX_CHANGE_CHARS:
            text = text[: MAX_CHANGE_CHARS - 3] + "..."
        parts.append(f"{name}={text}")
    return " ".join(parts) or "-"


def _state_lines(state: dict[str, Any]) -> Iterator[str]:
    width = max(len(name) for name in state)
    for name, value in state.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        yield f"{name:<{width}}  {text}"


def _export_lines(
    ledger: JobLedger, since: datetime | None, emails: ActorEmails, *, as_json: bool,
    on_position: Callable[[int], None],
) -> Iterator[str]:
    for logged in ledger.every_event(since=since):
        on_position(logged.position)
        event = {
            "position": logged.position,
            "aggregate": logged.aggregate,
            "aggregateId": str(logged.aggregate_id),
            **_event(logged.entry, emails),
        }
        if as_json:
            yield json.dumps(event, ensure_ascii=False)
        else:
            actor = event["actorEmail"] or event["actor"]
            yield (f"{event['position']:>9}  {event['at']:<27}  {event['aggregate']:<13}  "
                   f"{event['aggregateId']}  v{event['version']:<5}  {event['type']:<15}  "
                   f"{actor:<30}  {_changes(event['data'])}")


def _write(out: TextIO, lines: Iterable[str], batch: int = 500) -> None:
    """Writes the lines, a batch at a time, flushing after each batch."""
    buffered: list[str] = []
    for line in lines:
        buffered.append(line)
        if len(buffered) >= batch:
            out.write("\n".join(buffered) + "\n")
            out.flush()
            buffered.clear()
    if buffered:
        out.write("\n".join(buffered) + "\n")
    out.flush()


def _silence_stdout() -> None:
    """After the reader went away (``| head``), let the interpreter exit without a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
