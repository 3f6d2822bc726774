"""Which list query a caller may run."""

from __future__ import annotations

import logging
from typing import ParamSpec

from api.settings import Settings
from domain.errors import InvalidInputError
from domain.job import JobStatus
from domain.user import Role, User
from projections.query import JobQuery, SortOrder

logger = logging.getLogger("api")

P = ParamSpec("P")


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
