"""The API's side of the read model: answer a command once the view shows it; list queries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import ParamSpec

from starlette.concurrency import run_in_threadpool

from api.readmodel import ReadModel
from api.settings import Settings
from domain.errors import InvalidInputError
from domain.job import JobStatus
from domain.ledger import CommandResult
from domain.user import Role, User
from projections.query import JobQuery, SortOrder

logger = logging.getLogger("api")

P = ParamSpec("P")


class Commands:
    """Runs the ledger's commands off the event loop; each returns once the read model shows it."""

    def __init__(self, read_model: ReadModel, settings: Settings) -> None:
        self.read_model = read_model
        self.timeout = settings.read_your_writes_timeout

    async def run(
        self, command: Callable[P, CommandResult], /, *args: P.args, **kwargs: P.kwargs
    ) -> CommandResult:
        """Runs ``command(*args, **kwargs)`` and the wait for the read model in one pool thread."""
        return await run_in_threadpool(self._settle, partial(command, *args, **kwargs))

    def _settle(self, command: Callable[[], CommandResult]) -> CommandResult:
        """The command's result, once the read model has caught up with it.

        The wait is bounded: when it runs out the command has still happened, so it is answered
        anyway (and logged), rather than inviting the client to repeat it.
        """
        result = command()
        if not self.read_model.wait_for(result.position, self.timeout):
            logger.warning(
                "The read model did not reach position %d within %.1f s; answering anyway.",
                result.position, self.timeout,
            )
        return result


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
