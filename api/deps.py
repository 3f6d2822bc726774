"""Dependencies: ``Annotated`` aliases so routes declare what they need in their signatures.

Checks run in the order the contract gives: who are you (401), may your role call this route
(403), may you see this job (404); then the body and the job's rules (422, 412, 409).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Path, Request
from fastapi.security import OAuth2PasswordBearer

from api.errors import NotAuthenticatedError, PermissionDeniedError
from api.passwords import Passwords
from api.probe import HealthProbe
from api.readmodel import ReadModel
from api.settings import Settings
from api.tokens import Tokens
from domain.errors import InvalidInputError, JobNotFoundError, UserNotFoundError
from domain.job import Job
from domain.ledger import JobLedger
from domain.user import Role, User

TOKEN_URL = "/api/v1/auth/token"
_ENTITY_TAG = re.compile(r'"(\d{1,18})"')

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def _state(name: str) -> Callable[[Request], Any]:
    def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    return dependency


LedgerDep = Annotated[JobLedger, Depends(_state("ledger"))]
SettingsDep = Annotated[Settings, Depends(_state("settings"))]
TokensDep = Annotated[Tokens, Depends(_state("tokens"))]
PasswordsDep = Annotated[Passwords, Depends(_state("passwords"))]
ReadModelDep = Annotated[ReadModel, Depends(_state("read_model"))]
HealthProbeDep = Annotated[HealthProbe, Depends(_state("health_probe"))]


def current_user(
    token: Annotated[str | None, Depends(oauth2_scheme)], ledger: LedgerDep, tokens: TokensDep
) -> User:
    """The caller, from a valid bearer token of an enabled user whose role has not changed."""
    if not token:
        raise NotAuthenticatedError("This route needs a bearer token (Authorization: Bearer ...).")
    claims = tokens.decode(token)
    try:
        user = ledger.get_user(claims.user_id)
    except UserNotFoundError:
        raise NotAuthenticatedError("The token's user does not exist.", token_given=True) from None
    if user.disabled:
        raise NotAuthenticatedError("This account is disabled.", token_given=True)
    if user.role is not claims.role:
        raise NotAuthenticatedError(
            "The account's role changed since this token was issued; get a new token.",
            token_given=True,
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def progress_reader(
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    ledger: LedgerDep,
    tokens: TokensDep,
) -> User | None:
    """Nobody in particular while progress is public; otherwise the signed-in caller."""
    return None if settings.public_progress else current_user(token, ledger, tokens)


ProgressReader = Annotated[User | None, Depends(progress_reader)]


class RoleIn:
    """Dependency: the caller, when their role is one of ``roles`` (403 otherwise)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = roles

    def __call__(self, user: CurrentUser) -> User:
        if user.role not in self.roles:
            allowed = " or ".join(role.value for role in self.roles)
            raise PermissionDeniedError(f"Only {allowed} users may do this.")
        return user


#: Any signed-in user: member, worker or admin.
AnyUser = CurrentUser
#: Workers and admins: they read every job and drive its lifecycle.
WorkerUser = Annotated[User, Depends(RoleIn(Role.WORKER, Role.ADMIN))]
#: Admins only.
AdminUser = Annotated[User, Depends(RoleIn(Role.ADMIN))]


def job_id(job_id: Annotated[str, Path(description="The job's id (a UUID).")]) -> UUID:
    """The job id from the path; a malformed id is an unknown job (404)."""
    try:
        return UUID(job_id)
    except ValueError:
        raise JobNotFoundError(UUID(int=0), f"Job {job_id[:100]!r} not found.") from None


JobId = Annotated[UUID, Depends(job_id)]


def may_see(user: User, job: Job) -> bool:
    """Workers and admins see every job; members see the jobs they created."""
    return user.role is not Role.MEMBER or job.created_by == str(user.id)


def visible_job(user: CurrentUser, job_id: JobId, ledger: LedgerDep) -> Job:
    """The job, when the caller may see it; 404 otherwise (never reveal that it exists)."""
    job = ledger.get_job(job_id)
    if not may_see(user, job):
        raise JobNotFoundError(job_id)
    return job


VisibleJob = Annotated[Job, Depends(visible_job)]


def owned_job(user: CurrentUser, job: VisibleJob) -> Job:
    """The job, when the caller created it or is an admin; 403 for a worker who only sees it."""
    if user.role is not Role.ADMIN and job.created_by != str(user.id):
        raise PermissionDeniedError("Only the job's owner or an admin may do this.")
    return job


OwnedJob = Annotated[Job, Depends(owned_job)]


def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=100,
            description='Apply only if the job is at this version: the ETag, like "3".',
        ),
    ] = None,
) -> int | None:
    """The version ``If-Match`` names (None without the header, or with ``*``)."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ENTITY_TAG.fullmatch(if_match.strip())
    if match is None:
        raise InvalidInputError("If-Match", 'must be one entity tag like "3" (the ETag), or *')
    return int(match.group(1))


ExpectedVersion = Annotated[int | None, Depends(expected_version)]
