"""``/api/v1/jobs/{id}/...``: the commands that drive a job, each answering the job after it.

``If-Match: "<version>"`` makes a command conditional (412 when the job is at another version);
``Idempotency-Key`` makes it safe to send again (``api.idempotency``).
A worker's command that names its ``attempt`` is fenced: 409 lease-lost unless that attempt is
the job's running one.
"""

from __future__ import annotations

from functools import partial
from typing import assert_never
from uuid import UUID

from fastapi import APIRouter, Response

from api.deps import (
    JOB_PATH,
    AnyUser,
    CommandsDep,
    ExpectedVersion,
    LedgerDep,
    OwnedJob,
    VisibleJob,
    WorkerUser,
    worker_label,
)
from api.errors import PermissionDeniedError, problem_responses
from api.idempotency import IdempotencyKey, keyed
from api.policy import may_cancel
from api.responses import job_response, model_response
from api.routing import CheckedRoute
from api.schemas.jobs import (
    Cancellation,
    Completion,
    ErrorReport,
    Failure,
    JobOut,
    ProgressUpdate,
    Retry,
    StartRequest,
)
from api.schemas.workers import HeartbeatOut, HeartbeatRequest
from domain.job import Job
from domain.ledger import CommandResult, JobLedger

router = APIRouter(prefix="/api/v1/jobs", tags=["job commands"], route_class=CheckedRoute)

OWNER_ERRORS = problem_responses(401, 403, 404, 409, 412, 413, 422, 503)
WORKER_ERRORS = OWNER_ERRORS
HEARTBEAT_ERRORS = problem_responses(401, 403, 404, 409, 413, 422, 503)

#: The bodies of the commands a worker sends on the job it runs (alone or in a batch).
WorkerBody = ProgressUpdate | ErrorReport | HeartbeatRequest | Completion | Failure


@router.delete(JOB_PATH, response_model=JobOut, responses=OWNER_ERRORS)
async def delete_job(
    user: AnyUser,
    job: OwnedJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
) -> Response:
    """Cancels a job that is not running (pending or retrying; owner or admin); 409 otherwise."""
    return await keyed(
        commands, key, str(user.id), job_response,
        partial(
            ledger.cancel_job, job.id, actor=str(user.id), ask_running=False,
            expected_version=version,
        ),
    )  # fmt: skip


@router.post(f"{JOB_PATH}/cancel", response_model=JobOut, responses=OWNER_ERRORS)
async def cancel_job(
    user: AnyUser,
    job: VisibleJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
    body: Cancellation | None = None,
) -> Response:
    """Cancels a waiting job, or asks a running one to stop (owner or admin); a worker cancels
    the attempt it runs at once, naming its ``attempt``."""
    body = body or Cancellation()
    if not may_cancel(user, job, body.attempt):
        raise PermissionDeniedError(
            "Only the job's owner or an admin may cancel it; a worker cancels only the attempt "
            "it runs, named by attempt."
        )
    return await keyed(
        commands, key, str(user.id), job_response,
        partial(
            ledger.cancel_job, job.id, body.reason, actor=str(user.id), attempt=body.attempt,
            expected_version=version,
        ),
    )  # fmt: skip


@router.post(f"{JOB_PATH}/retry", response_model=JobOut, responses=OWNER_ERRORS)
async def retry_job(
    user: AnyUser,
    job: OwnedJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
    body: Retry | None = None,
) -> Response:
    """Sends a failed or cancelled job back to pending for more attempts (owner or admin)."""
    more = None if body is None else body.max_attempts
    return await keyed(
        commands, key, str(user.id), job_response,
        partial(ledger.retry_job, job.id, more, actor=str(user.id), expected_version=version),
    )  # fmt: skip


@router.post(f"{JOB_PATH}/start", response_model=JobOut, responses=WORKER_ERRORS)
async def start_job(
    user: WorkerUser,
    job: VisibleJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
    body: StartRequest | None = None,
) -> Response:
    """Starts the next attempt of a due pending or retrying job; with ``leaseSeconds`` the
    attempt holds a lease and is rescued when it passes."""
    body = body or StartRequest()
    return await keyed(
        commands, key, str(user.id), job_response,
        partial(
            ledger.start_job, job.id, actor=str(user.id), worker=worker_label(user, body.worker),
            lease_seconds=body.lease_seconds, expected_version=version,
        ),
    )  # fmt: skip


@router.post(f"{JOB_PATH}/heartbeat", response_model=HeartbeatOut, responses=HEARTBEAT_ERRORS)
async def heartbeat(
    body: HeartbeatRequest,
    user: WorkerUser,
    job: VisibleJob,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
) -> Response:
    """Keeps the running attempt's lease alive; tells whether a cancel was requested."""
    command = worker_command(ledger, job.id, str(user.id), body)
    return await keyed(commands, key, str(user.id), _heartbeat_response, command)


@router.post(f"{JOB_PATH}/progress", response_model=JobOut, responses=WORKER_ERRORS)
async def report_progress(
    body: ProgressUpdate,
    user: WorkerUser,
    job: VisibleJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
) -> Response:
    """Records how many items a processing job has done (and its new total); extends its lease."""
    command = worker_command(ledger, job.id, str(user.id), body, version)
    return await keyed(commands, key, str(user.id), job_response, command)


@router.post(f"{JOB_PATH}/errors", response_model=JobOut, responses=WORKER_ERRORS)
async def log_error(
    body: ErrorReport,
    user: WorkerUser,
    job: VisibleJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
) -> Response:
    """Records an error met on a job that is not finished; the job carries on."""
    command = worker_command(ledger, job.id, str(user.id), body, version)
    return await keyed(commands, key, str(user.id), job_response, command)


@router.post(f"{JOB_PATH}/complete", response_model=JobOut, responses=WORKER_ERRORS)
async def complete_job(
    user: WorkerUser,
    job: VisibleJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
    body: Completion | None = None,
) -> Response:
    """Marks a processing job as completed, with an optional result."""
    command = worker_command(ledger, job.id, str(user.id), body or Completion(), version)
    return await keyed(commands, key, str(user.id), job_response, command)


@router.post(f"{JOB_PATH}/fail", response_model=JobOut, responses=WORKER_ERRORS)
async def fail_job(
    body: Failure,
    user: WorkerUser,
    job: VisibleJob,
    version: ExpectedVersion,
    ledger: LedgerDep,
    commands: CommandsDep,
    key: IdempotencyKey,
) -> Response:
    """Fails the running attempt (retried after a backoff while attempts are left, unless
    ``retry`` is false), or a job that is not running; acknowledges a requested cancel."""
    command = worker_command(ledger, job.id, str(user.id), body, version)
    return await keyed(commands, key, str(user.id), job_response, command)


def _heartbeat_response(job: Job) -> Response:
    return model_response(HeartbeatOut.of(job))


def worker_command(
    ledger: JobLedger,
    job_id: UUID,
    actor: str,
    body: WorkerBody,
    expected_version: frozenset[int] | None = None,
) -> partial[CommandResult]:
    """The ledger call a worker's command body stands for, on its own route or in a batch."""
    match body:
        case ProgressUpdate():
            return partial(
                ledger.update_progress, job_id, body.processed_items, body.total_items,
                actor=actor, attempt=body.attempt, lease_seconds=body.lease_seconds,
                expected_version=expected_version,
            )  # fmt: skip
        case ErrorReport():
            return partial(
                ledger.log_error, job_id, body.message, body.item, body.details, actor=actor,
                attempt=body.attempt, expected_version=expected_version,
            )  # fmt: skip
        case HeartbeatRequest():
            return partial(
                ledger.heartbeat, job_id, body.attempt, actor=actor,
                lease_seconds=body.lease_seconds,
            )  # fmt: skip
        case Completion():
            return partial(
                ledger.complete_job, job_id, body.result, actor=actor, attempt=body.attempt,
                expected_version=expected_version,
            )  # fmt: skip
        case Failure():
            return partial(
                ledger.fail_job, job_id, body.reason, actor=actor, attempt=body.attempt,
                retry=body.retry, retry_in_seconds=body.retry_in_seconds,
                expected_version=expected_version,
            )  # fmt: skip
        case _:
            assert_never(body)
