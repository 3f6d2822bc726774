"""Dependencies: ``Annotated`` aliases so routes declare what they need in their signatures.

Checks run in the order the contract gives: who are you (401), may your role call this route
(403), may you see this job (404); then the body and the job's rules (422, 412, 409).

Every dependency is ``async def``: FastAPI would hand each plain ``def`` one to the thread pool,
one hop per dependency. Those that read the store hand only their store read to the pool.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Path, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from api.errors import NotAuthenticatedError, PermissionDeniedError
from api.login import AddressThrottle
from api.passwords import Passwords
from api.policy import DRIVERS, may_act_as_owner, may_see
from api.settings import Settings
from api.tokens import LEEWAY_SECONDS, Claims, Tokens
from domain.errors import JobNotFoundError, UserNotFoundError
from domain.job import MAX_VERSION, MAX_WORKER_CHARS, Job
from domain.ledger import JobLedger
from domain.user import Role, User
from projections.lag import LagProbe
from projections.readmodel import Commands, ReadModel

TOKEN_URL = "/api/v1/auth/token"
#: Verified tokens whose claims are kept (clients send the same token with every request).
VERIFIED_TOKENS = 4096
#: One job's path under ``/api/v1/jobs``: its id, a UUID. Any other segment names no job (404 from
#: the router), so ``/jobs/claim`` and ``/jobs/commands`` are never read as job ids.
JOB_PATH = "/{job_id:uuid}"
#: The entity tags in an ``If-Match`` (RFC 9110): ``W/`` for a weak one, then a quoted text.
_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')
#: The longest version an entity tag may name (a version is at most MAX_VERSION).
MAX_VERSION_DIGITS = len(str(MAX_VERSION))
_JOB_ID = Path(description="The job's id (a UUID).")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def _state(name: str) -> Callable[[Request], Awaitable[Any]]:
    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    return dependency


LedgerDep = Annotated[JobLedger, Depends(_state("ledger"))]
SettingsDep = Annotated[Settings, Depends(_state("settings"))]
TokensDep = Annotated[Tokens, Depends(_state("tokens"))]
PasswordsDep = Annotated[Passwords, Depends(_state("passwords"))]
AddressThrottleDep = Annotated[AddressThrottle, Depends(_state("address_throttle"))]
ReadModelDep = Annotated[ReadModel, Depends(_state("read_model"))]
LagProbeDep = Annotated[LagProbe, Depends(_state("lag_probe"))]
CommandsDep = Annotated[Commands, Depends(_state("commands"))]


async def current_user(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    """The caller, from a valid bearer token of an enabled user whose role has not changed.

    Answered on the event loop when the ledger's copy of the user is known to be as new as the
    view (a disable or a role change answers only once the view shows it); otherwise the store
    is read in a worker thread.
    """
    state = request.app.state
    if token:
        claims = _verified(state.tokens, token)
        user = state.ledger.current_user(claims.user_id)
        if user is not None:
            return _checked(user, claims)
    return await run_in_threadpool(authenticate, token, state.ledger, state.tokens)


def authenticate(token: str | None, ledger: JobLedger, tokens: Tokens) -> User:
    """The enabled user a bearer token names; reads the store, so a disabled user is refused."""
    if not token:
        raise NotAuthenticatedError("This route needs a bearer token (Authorization: Bearer ...).")
    claims = _verified(tokens, token)
    try:
        user = ledger.get_user(claims.user_id)
    except UserNotFoundError:
        raise NotAuthenticatedError("The token's user does not exist.", token_given=True) from None
    return _checked(user, claims)


def _checked(user: User, claims: Claims) -> User:
    """The token's user, when enabled and still in the token's role."""
    if user.disabled:
        raise NotAuthenticatedError("This account is disabled.", token_given=True)
    if user.role is not claims.role:
        raise NotAuthenticatedError(
            "The account's role changed since this token was issued; get a new token.",
            token_given=True,
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]

_verified_claims: dict[tuple[Tokens, str], Claims] = {}


def _verified(tokens: Tokens, token: str) -> Claims:
    """The token's claims: decoded once, then taken from memory until the token expires.

    A token's signature and claims never change, so only its expiry needs checking again (the
    user behind it is checked on every request by the caller). An expired token is decoded
    again, so it is refused with the decoder's own answer.
    """
    key = (tokens, token)
    claims = _verified_claims.get(key)
    if claims is None or claims.expires_at <= time.time() - LEEWAY_SECONDS:
        claims = tokens.decode(token)
        if len(_verified_claims) >= VERIFIED_TOKENS:
            _verified_claims.clear()
        _verified_claims[key] = claims
    return claims


async def progress_reader(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User | None:
    """Nobody in particular while progress is public; otherwise the signed-in caller."""
    if request.app.state.settings.public_progress:
        return None
    return await current_user(request, token)


ProgressReader = Annotated[User | None, Depends(progress_reader)]


class RoleIn:
    """Dependency: the caller, when their role is one of ``roles`` (403 otherwise)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = roles

    async def __call__(self, user: CurrentUser) -> User:
        return self.check(user)

    def check(self, user: User) -> User:
        """The user, when their role is one of ``roles``; raises PermissionDeniedError otherwise."""
        if user.role not in self.roles:
            allowed = " or ".join(role.value for role in self.roles)
            raise PermissionDeniedError(f"Only {allowed} users may do this.")
        return user


#: Any signed-in user: member, worker or admin.
AnyUser = CurrentUser
#: Workers and admins: they read every job and drive its lifecycle.
WorkerUser = Annotated[User, Depends(RoleIn(*DRIVERS))]
#: Admins only.
AdminUser = Annotated[User, Depends(RoleIn(Role.ADMIN))]


async def path_job_id(job_id: Annotated[UUID, _JOB_ID]) -> UUID:
    """The job id from the path (``JOB_PATH`` routes only UUIDs here)."""
    return job_id


def parse_job_id(job_id: str) -> UUID:
    """The job id a client sent; a malformed id is an unknown job (JobNotFoundError, 404)."""
    try:
        return UUID(job_id)
    except ValueError:
        raise JobNotFoundError(UUID(int=0), f"Job {job_id[:100]!r} not found.") from None


JobId = Annotated[UUID, Depends(path_job_id)]


async def visible_job(
    request: Request, user: CurrentUser, job_id: Annotated[UUID, _JOB_ID]
) -> Job:
    """The job, when the caller may see it; 404 otherwise (never reveal that it exists).

    A read (GET) gets the job as the store has it now, or this process's copy when that is
    known to be as new as the view (every write a client was answered is in it). A command gets
    the job as this process last saw it, without a store read when it has seen it: its id and
    creator, all that decide who may see it, never change, and the command itself runs against
    the fresh state.
    """
    ledger: JobLedger = request.app.state.ledger
    job = ledger.current_job(job_id) if request.method == "GET" else ledger.known_job(job_id)
    if job is None:
        job = await run_in_threadpool(ledger.get_job, job_id)
    if not may_see(user, job):
        raise JobNotFoundError(job_id)
    return job


VisibleJob = Annotated[Job, Depends(visible_job)]


async def owned_job(user: CurrentUser, job: VisibleJob) -> Job:
    """The job, when the caller created it or is an admin; 403 for a worker who only sees it."""
    if not may_act_as_owner(user, job):
        raise PermissionDeniedError("Only the job's owner or an admin may do this.")
    return job


OwnedJob = Annotated[Job, Depends(owned_job)]


async def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='Apply only if the job is at this version: its ETag, like "3", or a list '
            'like "3", "4" (RFC 9110); * is any version. 412 when the job is at a version the '
            "list does not name: a weak tag (W/) never matches, nor does anything but a quoted "
            "version.",
        ),
    ] = None,
) -> frozenset[int] | None:
    """The versions ``If-Match`` names (None without the header, or with ``*``): those of its
    strong entity tags that are versions, as RFC 9110's strong comparison matches them."""
    if if_match is None or if_match.strip() == "*":
        return None
    return frozenset(
        int(tag)
        for weak, tag in _ENTITY_TAG.findall(if_match)
        if not weak and tag.isascii() and tag.isdigit() and len(tag) <= MAX_VERSION_DIGITS
    )


ExpectedVersion = Annotated[frozenset[int] | None, Depends(expected_version)]


def worker_label(user: User, label: str | None) -> str:
    """The label an attempt shows for its worker: the one given, else the caller's email (its
    first ``MAX_WORKER_CHARS`` characters: an email may be longer than a label)."""
    return user.email[:MAX_WORKER_CHARS] if label is None else label
