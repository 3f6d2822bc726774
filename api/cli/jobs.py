"""``jobledger jobs retry``: send a failed or cancelled job back to pending, without the HTTP API.

The retry is recorded with the actor ``cli:<login name>``, like every command-line change.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from uuid import UUID

from api.cli.store import WHERE_THE_STORE_IS, NoStoreError, open_ledger
from api.cli.users import cli_actor
from domain.errors import JobLedgerError, JobNotFoundError
from domain.job import MAX_MAX_ATTEMPTS, MIN_MAX_ATTEMPTS

PROG = "jobledger jobs retry"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("jobs", help="act on jobs", description=WHERE_THE_STORE_IS)
    commands = parser.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")
    retry = commands.add_parser(
        "retry", help="send a failed or cancelled job back to pending for more attempts",
        description="Sends a failed or cancelled job back to pending, due now; attempt numbers "
        "continue. Exit status: 0 done; 1 no such job; 2 the job is not failed or cancelled, "
        "bad input, no store, or the store failed. " + WHERE_THE_STORE_IS,
    )  # fmt: skip
    retry.add_argument("job_id", type=_job_id, metavar="JOB_ID", help="the job's id (a UUID)")
    retry.add_argument(
        "--max-attempts", type=int, default=None, metavar="N",
        help=f"attempts to grant ({MIN_MAX_ATTEMPTS}-{MAX_MAX_ATTEMPTS}; default: as many as "
        "the job was created with)",
    )  # fmt: skip
    retry.set_defaults(handler=retry_job)


def retry_job(args: argparse.Namespace) -> int:
    """Retries the job; prints its new status, due time and attempts."""
    try:
        with open_ledger() as ledger:
            job = ledger.retry_job(args.job_id, args.max_attempts, actor=cli_actor()).job
    except JobNotFoundError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except (NoStoreError, JobLedgerError, ValueError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    print(
        f"job {job.id} is {job.status.value}, due {job.run_at.isoformat()}; attempts "
        f"{job.attempt + 1}-{job.max_attempts} may run"
    )
    return 0


def _job_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a job id (a UUID): {text!r}") from None
