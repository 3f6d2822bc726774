"""``/api/v1/jobs/{id}/...``: the commands that drive a job, each answering the job after it.

``If-Match: "<version>"`` makes a command conditional (412 when the job is at another version).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import (
    AnyUser,
    CommandsDep,
    ExpectedVersion,
    LedgerDep,
    OwnedJob,
    VisibleJob,
    WorkerUser,
)
from api.errors import problem_responses
from api.responses import job_response
from api.routing import CheckedRoute
from api.schemas.jobs import (
    Cancellation,
    Completion,
    ErrorReport,
    Failure,
    JobOut,
    ProgressUpdate,
)

router = APIRouter(prefix="/api/v1/jobs", tags=["job commands"], route_class=CheckedRoute)

OWNER_ERRORS = problem_responses(401, 403, 404, 409, 412, 413, 422, 503)
WORKER_ERRORS = OWNER_ERRORS


@router.delete("/{job_id}", response_model=JobOut, responses=OWNER_ERRORS)
async def delete_job(
    user: AnyUser, job: OwnedJob, version: ExpectedVersion, ledger: LedgerDep,
    commands: CommandsDep,
) -> Response:
    """Cancels a pending job (owner or admin), as the original API's DELETE did; 409 otherwise."""
    result = await commands.run(
        ledger.cancel_job, job.id, actor=str(user.id), expected_version=version
    )
    return job_response(result.job)


@router.post("/{job_id}/cancel", response_model=JobOut, responses=OWNER_ERRORS)
async def cancel_job(
    user: AnyUser, job: OwnedJob, version: ExpectedVersion, ledger: LedgerDep,
    commands: CommandsDep,
    body: Cancellation | None = None,
) -> Response:
    """Cancels a pending job (owner or admin), with an optional reason; 409 otherwise."""
    reason = None if body is None else body.reason
    result = await commands.run(
        ledger.cancel_job, job.id, reason, actor=str(user.id), expected_version=version
    )
    return job_response(result.job)


@router.post("/{job_id}/start", response_model=JobOut, responses=WORKER_ERRORS)
async def start_job(
    user: WorkerUser, job: VisibleJob, version: ExpectedVersion, ledger: LedgerDep,
    commands: CommandsDep,
) -> Response:
    """Starts a pending job (workers and admins)."""
    result = await commands.run(
        ledger.start_job, job.id, actor=str(user.id), expected_version=version
    )
    return job_response(result.job)


@router.post("/{job_id}/progress", response_model=JobOut, responses=WORKER_ERRORS)
async def report_progress(
    body: ProgressUpdate, user: WorkerUser, job: VisibleJob, version: ExpectedVersion,
    ledger: LedgerDep, commands: CommandsDep,
) -> Response:
    """Records how many items a processing job has done, and optionally its new total."""
    result = await commands.run(
        ledger.update_progress, job.id, body.processed_items, body.total_items,
        actor=str(user.id), expected_version=version,
    )
    return job_response(result.job)


@router.post("/{job_id}/errors", response_model=JobOut, responses=WORKER_ERRORS)
async def log_error(
    body: ErrorReport, user: WorkerUser, job: VisibleJob, version: ExpectedVersion,
    ledger: LedgerDep, commands: CommandsDep,
) -> Response:
    """Records an error met on a pending or processing job; the job carries on."""
    result = await commands.run(
        ledger.log_error, job.id, body.message, body.item, body.details,
        actor=str(user.id), expected_version=version,
    )
    return job_response(result.job)


@router.post("/{job_id}/complete", response_model=JobOut, responses=WORKER_ERRORS)
async def complete_job(
    user: WorkerUser, job: VisibleJob, version: ExpectedVersion, ledger: LedgerDep,
    commands: CommandsDep,
    body: Completion | None = None,
) -> Response:
    """Marks a processing job as completed, with an optional result."""
    result_value = None if body is None else body.result
    result = await commands.run(
        ledger.complete_job, job.id, result_value, actor=str(user.id), expected_version=version
    )
    return job_response(result.job)


@router.post("/{job_id}/fail", response_model=JobOut, responses=WORKER_ERRORS)
async def fail_job(
    body: Failure, user: WorkerUser, job: VisibleJob, version: ExpectedVersion,
    ledger: LedgerDep, commands: CommandsDep,
) -> Response:
    """Marks a pending or processing job as failed, with a reason."""
    result = await commands.run(
        ledger.fail_job, job.id, body.reason, actor=str(user.id), expected_version=version
    )
    return job_response(result.job)
