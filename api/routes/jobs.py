"""``/api/v1/jobs``: create, list and read jobs, their progress and their history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import (
    JOB_PATH,
    AnyUser,
    CommandsDep,
    CurrentUser,
    JobId,
    LedgerDep,
    ProgressReader,
    ReadModelDep,
    SettingsDep,
    VisibleJob,
)
from api.errors import problem_responses
from api.policy import DEFAULT_PAGE_SIZE, PageLimit, list_query, may_see
from api.responses import job_list_response, job_response, model_response
from api.routing import CheckedRoute
from api.schemas.base import NOT_BLANK, UtcInstant
from api.schemas.history import (
    DEFAULT_HISTORY_PAGE,
    ActorEmails,
    FromVersion,
    History,
    HistoryLimit,
    history_events,
    next_from_version,
)
from api.schemas.jobs import JobCreate, JobList, JobOut, ProgressOut
from domain.errors import JobNotFoundError
from domain.job import MAX_ACTOR_CHARS, MAX_TYPE_CHARS, MAX_VERSION, Job, JobStatus
from domain.ledger import MAX_IDEMPOTENCY_KEY_CHARS, JobLedger
from domain.user import User
from projections.query import CURSOR_PATTERN, MAX_CURSOR_CHARS, MAX_OFFSET, JobPage, SortOrder

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], route_class=CheckedRoute)


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    responses={
        200: {"model": JobOut, "description": "A retry with the same Idempotency-Key and body"},
        **problem_responses(401, 409, 413, 422, 503),
    },
)
async def create_job(
    body: JobCreate,
    user: AnyUser,
    ledger: LedgerDep,
    commands: CommandsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            pattern=NOT_BLANK,
            description="Makes the create safe to send again: a repeat with the same key and body "
            "gets the job it created (200); the same key with another body is 409.",
        ),
    ] = None,
) -> Response:
    """Creates a pending job owned by the caller; an ``Idempotency-Key`` makes retries safe (409
    when the key already created a job from another body)."""
    result = await commands.run(
        ledger.create_job, job_type=body.job_type, data=body.data, total_items=body.total_items,
        actor=str(user.id), idempotency_key=idempotency_key, priority=body.priority,
        run_at=body.run_at, max_attempts=body.max_attempts,
    )
    headers = {"Location": f"{router.prefix}/{result.job.id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return job_response(result.job, status_code=200 if result.replayed else 201, headers=headers)


@router.get("", response_model=JobList, responses=problem_responses(401, 404, 422, 503))
async def list_jobs(
    user: AnyUser,
    read_model: ReadModelDep,
    settings: SettingsDep,
    status: Annotated[list[JobStatus] | None, Query(description="Repeat for several.")] = None,
    job_type: Annotated[
        str | None, Query(alias="type", min_length=1, max_length=MAX_TYPE_CHARS)
    ] = None,
    created_by: Annotated[
        str | None, Query(alias="createdBy", min_length=1, max_length=MAX_ACTOR_CHARS)
    ] = None,
    sort: SortOrder = SortOrder.NEWEST_FIRST,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_CHARS, pattern=CURSOR_PATTERN,
            description="A page's nextCursor: the page after it, with the same filters and sort "
            "(an offset skips that many more); 404 for a cursor this server did not issue for "
            "them.",
        ),
    ] = None,
) -> Response:
    """Lists jobs, newest first by default; members see only their own."""
    query = list_query(
        user, settings, statuses=tuple(status or ()), job_type=job_type, created_by=created_by,
        sort=sort, limit=limit, offset=offset, cursor=cursor,
    )
    if query is None:
        return job_list_response(JobPage(items=[], limit=limit, offset=offset))
    return job_list_response(await read_model.page(query))


@router.get(JOB_PATH, response_model=JobOut, responses=problem_responses(401, 404, 422, 503))
async def get_job(
    job: VisibleJob,
    ledger: LedgerDep,
    as_of_version: Annotated[
        int | None,
        Query(
            alias="asOfVersion", ge=1, le=MAX_VERSION,
            description="The state after this version; 404 when the job has no such version yet.",
        ),
    ] = None,
    as_of: Annotated[
        UtcInstant | None,
        Query(alias="asOf", description="The state after every event at or before this time "
              "(RFC 3339 with a time zone); 404 before the job existed."),
    ] = None,
) -> Response:
    """Returns the job (``ETag``: its version), or its past state with ``asOfVersion`` or
    ``asOf``; with both, the earlier of the two states."""
    if as_of_version is not None or as_of is not None:
        job = await run_in_threadpool(ledger.job_as_of, job.id, version=as_of_version, at=as_of)
    return job_response(job)


@router.get(
    f"{JOB_PATH}/progress", response_model=ProgressOut, responses=problem_responses(401, 404, 503)
)
async def get_progress(caller: ProgressReader, job_id: JobId, ledger: LedgerDep) -> Response:
    """Returns how far the job has got (public unless JOBLEDGER_PUBLIC_PROGRESS=false)."""
    job = await run_in_threadpool(ledger.get_job, job_id)
    if caller is not None and not may_see(caller, job):
        raise JobNotFoundError(job_id)
    return model_response(ProgressOut.of(job))


@router.get(
    f"{JOB_PATH}/history", response_model=History, responses=problem_responses(401, 404, 422, 503)
)
async def get_history(
    job: VisibleJob,
    user: CurrentUser,
    ledger: LedgerDep,
    from_version: FromVersion = 1,
    limit: HistoryLimit = DEFAULT_HISTORY_PAGE,
) -> Response:
    """Returns a page of the job's events in version order: version, type, time, actor, data.

    Actors are shown as emails to admins and workers; members see only their own email.
    """
    history = await run_in_threadpool(_history, ledger, job, user, from_version, limit)
    return model_response(history)


def _history(ledger: JobLedger, job: Job, viewer: User, from_version: int, limit: int) -> History:
    """A page of the job's history as ``viewer`` may see it (reads the store)."""
    entries = ledger.history(job.id, from_version=from_version, limit=limit)
    return History(
        job_id=job.id,
        events=history_events(entries, ActorEmails(ledger, viewer)),
        next_from_version=next_from_version(entries, limit, job.version),
    )
