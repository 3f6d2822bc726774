"""The API's side of the read model: answer a command once the view shows it; list queries."""

from __future__ import annotations

import logging

from fastapi import Response

from api.readmodel import ReadModel
from api.schemas.jobs import JobOut
from api.settings import Settings
from domain.errors import InvalidInputError
from domain.job import JobStatus
from domain.ledger import CommandResult
from domain.user import Role, User
from projections.query import JobQuery, SortOrder

logger = logging.getLogger("api")


def answer(
    result: CommandResult, response: Response, read_model: ReadModel, settings: Settings
) -> JobOut:
    """The job after a command, with its ``ETag``, once the read model has caught up with it.

    The wait is bounded: when it runs out the command has still happened, so it is answered
    anyway (and logged), rather than inviting the client to repeat it.
    """
    timeout = settings.read_your_writes_timeout
    if not read_model.wait_for(result.position, timeout):
        logger.warning(
            "The read model did not reach position %d within %.1f s; answering anyway.",
            result.position, timeout,
        )
    response.headers["ETag"] = f'"{result.job.version}"'
    return JobOut.of(result.job)


def list_query(
    user: User,
    settings: Settings,
    *,
    statuses: tuple[JobStatus, ...],
    job_type: str | None,
    created_by: str | None,
    sort: SortOrder,
    limit: int,
    offset: int,
    cursor: str | None,
) -> JobQuery | None:
    """The query a caller may run (members: their own jobs only); None when it can match nothing."""
    if limit > settings.max_page_size:
        raise InvalidInputError("limit", f"must be at most {settings.max_page_size}")
    member = user.role is Role.MEMBER
    foreign = member and created_by is not None and created_by != str(user.id)
    query = JobQuery(
        statuses=statuses, job_type=job_type, created_by=str(user.id) if member else created_by,
        sort=sort, limit=limit, offset=offset, cursor=cursor,
    )
    return None if foreign else query
