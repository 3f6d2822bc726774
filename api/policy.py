"""Who may see what, and how much one request may ask for.

Workers and admins see every job and every actor's email. A member sees only the jobs they
created (lists are narrowed to them; any other job is unknown, 404) and, among the actors of a
history, only themself. A job's owner commands (cancel, retry) are for its creator or an admin: a
worker sees the job but may not act as its owner (403), except to cancel the attempt it runs,
which it names by its ``attempt``. Workers and admins drive jobs (``DRIVERS``: claim, start,
heartbeat, progress, errors, complete, fail, the batch of commands). A page of a list holds at
most the deployment's ``JOBLEDGER_MAX_PAGE_SIZE`` items, within the read side's own bounds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from api.settings import Settings
from domain.errors import InvalidInputError
from domain.job import Job, JobStatus
from domain.user import Role, User
from projections.query import DEFAULT_LIMIT, MAX_LIMIT, MIN_LIMIT, JobQuery, SortOrder

#: The ``limit`` query parameter of every list (give ``= DEFAULT_PAGE_SIZE`` as the default);
#: ``page_size`` then holds it to the deployment's setting.
PageLimit = Annotated[int, Query(ge=MIN_LIMIT, le=MAX_LIMIT)]
#: Items per page unless ``limit`` says otherwise.
DEFAULT_PAGE_SIZE = DEFAULT_LIMIT


#: The roles that drive jobs through their lifecycle.
DRIVERS = (Role.WORKER, Role.ADMIN)


def sees_everyone(user: User) -> bool:
    """Workers and admins see every job and actor; members see only their own."""
    return user.role is not Role.MEMBER


def may_see(user: User, job: Job) -> bool:
    """Whether the user may see the job: everyone's, or one they created."""
    return sees_everyone(user) or job.created_by == str(user.id)


def may_see_actor(user: User, actor: str) -> bool:
    """Whether the user may know who ``actor`` is (by email): everyone, or themself."""
    return sees_everyone(user) or actor == str(user.id)


def may_act_as_owner(user: User, job: Job) -> bool:
    """Whether the user may run the job's owner commands: its creator, or an admin."""
    return user.role is Role.ADMIN or job.created_by == str(user.id)


def may_cancel(user: User, job: Job, attempt: int | None) -> bool:
    """Whether the user may cancel the job: its owner or an admin, or a worker naming the
    attempt it runs (the ledger then checks that the attempt is the running one)."""
    return may_act_as_owner(user, job) or (user.role is Role.WORKER and attempt is not None)


def page_size(limit: int, settings: Settings) -> int:
    """The limit, when the deployment allows pages that large; InvalidInputError otherwise."""
    if limit > settings.max_page_size:
        raise InvalidInputError("limit", f"must be at most {settings.max_page_size}")
    return limit


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
    own = None if sees_everyone(user) else str(user.id)
    query = JobQuery(
        statuses=statuses, job_type=job_type, created_by=own or created_by,
        sort=sort, limit=page_size(limit, settings), offset=offset, cursor=cursor,
    )
    foreign = own is not None and created_by is not None and created_by != own
    return None if foreign else query


def stream_owner(user: User) -> str | None:
    """Whose jobs the user's event streams carry: a member's own (their id); None: everyone's."""
    return None if sees_everyone(user) else str(user.id)
