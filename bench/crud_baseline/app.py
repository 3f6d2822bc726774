"""The baseline's FastAPI app: the job lifecycle routes, bearer auth, one transaction each."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import jwt
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer

from bench.crud_baseline import jobs
from bench.crud_baseline.schemas import (
    Completion,
    JobCreate,
    JobList,
    JobOut,
    JobSummaryOut,
    ProgressUpdate,
    Setup,
    SetupOut,
    Status,
    UserOut,
)
from bench.crud_baseline.store import JobTable, PostgresJobTable, Row, SQLiteJobTable
from stores import Store

DATABASE_URL_VARIABLE = "CRUD_BASELINE_DATABASE_URL"
SECRET_VARIABLE = "JOBLEDGER_JWT_SECRET"
ALGORITHM = "HS256"
ISSUER = "jobledger"
AUDIENCE = "jobledger-api"
LEEWAY_SECONDS = 10
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "iss", "aud", "jti")
TOKEN_TTL_SECONDS = 3600
PREFIX = "/api/v1/jobs"
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
router = APIRouter()


class Problem(Exception):
    """An error answered as RFC 9457 problem details."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def table(request: Request) -> JobTable:
    """The app's job table."""
    job_table: JobTable = request.app.state.table
    return job_table


TableDep = Annotated[JobTable, Depends(table)]


def current_user(
    token: Annotated[str | None, Depends(oauth2_scheme)], table: TableDep, request: Request
) -> Row:
    """The caller: a valid HS256 token with every claim, of an enabled user with that role."""
    if not token:
        raise Problem(401, "This route needs a bearer token.")
    try:
        claims = jwt.decode(
            token, request.app.state.secret, algorithms=[ALGORITHM], audience=AUDIENCE,
            issuer=ISSUER, leeway=LEEWAY_SECONDS, options={"require": list(REQUIRED_CLAIMS)},
        )
        user_id = str(uuid.UUID(str(claims["sub"])))
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Problem(401, "The token is invalid.") from None
    user = table.get_user(user_id)
    if user is None or user["disabled"] or user["role"] != claims["role"]:
        raise Problem(401, "The token's user is unknown, disabled or changed role.")
    return user


CurrentUser = Annotated[Row, Depends(current_user)]


def worker(user: CurrentUser) -> Row:
    """The caller, when a worker or an admin."""
    if user["role"] not in ("worker", "admin"):
        raise Problem(403, "Only worker or admin users may do this.")
    return user


WorkerUser = Annotated[Row, Depends(worker)]


@router.get("/api/health")
def health(table: TableDep) -> dict[str, str]:
    """Whether the database answers."""
    table.execute("SELECT 1")
    return {"status": "ok"}


@router.post("/api/v1/auth/setup", status_code=201, response_model=SetupOut)
def setup(body: Setup, table: TableDep, request: Request) -> SetupOut:
    """Creates the first admin; 409 once any user exists."""
    email = body.email.strip().lower()
    user = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, email)), "email": email, "role": "admin",
        "disabled": False, "password_hash": HASHER.hash(body.password),
        "created_at": jobs.now(),
    }
    if not table.insert_first_user(user):
        raise Problem(409, "A user exists already.")
    token = _token(user, request.app.state.secret)
    return SetupOut(user=UserOut.model_validate(user), access_token=token)


@router.post(PREFIX, status_code=201, response_model=JobOut)
def create_job(body: JobCreate, user: CurrentUser, table: TableDep, response: Response) -> JobOut:
    """Creates a pending job owned by the caller."""
    job = jobs.new_job(body.job_type, body.data, body.total_items, user["id"])
    table.insert_job(job)
    response.headers["Location"] = f"{PREFIX}/{job['id']}"
    response.headers["ETag"] = f'"{job["version"]}"'
    return JobOut.of(job)


@router.get(PREFIX, response_model=JobList)
def list_jobs(
    user: CurrentUser,
    table: TableDep,
    status: Annotated[list[Status] | None, Query()] = None,
    job_type: Annotated[str | None, Query(alias="type", min_length=1, max_length=100)] = None,
    sort: Literal["-createdAt"] = "-createdAt",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JobList:
    """Lists jobs, newest first; members see only their own."""
    owner = user["id"] if user["role"] == "member" else None
    rows = table.list_jobs(tuple(status or ()), job_type, owner, limit, offset)
    return JobList(items=[JobSummaryOut.of(row) for row in rows], limit=limit, offset=offset)


@router.get(PREFIX + "/{job_id}", response_model=JobOut)
def get_job(job_id: str, user: CurrentUser, table: TableDep, response: Response) -> JobOut:
    """Returns the job."""
    job = table.get_job(job_id)
    if job is None or (user["role"] == "member" and job["created_by"] != user["id"]):
        raise Problem(404, "Job not found.")
    response.headers["ETag"] = f'"{job["version"]}"'
    return JobOut.of(job)


@router.post(PREFIX + "/{job_id}/start", response_model=JobOut)
def start_job(job_id: str, user: WorkerUser, table: TableDep, response: Response) -> JobOut:
    """Starts a pending job."""
    return _command(table, job_id, jobs.start, response)


@router.post(PREFIX + "/{job_id}/progress", response_model=JobOut)
def report_progress(
    job_id: str, body: ProgressUpdate, user: WorkerUser, table: TableDep, response: Response
) -> JobOut:
    """Records how many items a processing job has done."""
    def change(job: Row) -> Row:
        return jobs.update_progress(job, body.processed_items, body.total_items)

    return _command(table, job_id, change, response)


@router.post(PREFIX + "/{job_id}/complete", response_model=JobOut)
def complete_job(
    job_id: str, user: WorkerUser, table: TableDep, response: Response,
    body: Completion | None = None,
) -> JobOut:
    """Marks a processing job as completed."""
    result = None if body is None else body.result
    return _command(table, job_id, lambda job: jobs.complete(job, result), response)


def create_app(database_url: str, secret: bytes) -> FastAPI:
    """The baseline app; the table opens (and its schema is created) when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        job_table = open_table(database_url)
        job_table.create_schema()
        app.state.table = job_table
        try:
            yield
        finally:
            job_table.close()

    app = FastAPI(title="jobledger CRUD baseline", lifespan=lifespan)
    app.state.secret = secret
    app.include_router(router)
    app.add_exception_handler(Problem, _problem)  # type: ignore[arg-type]
    return app


def create_app_from_env() -> FastAPI:
    """The app for uvicorn's factory mode: the URL and the secret from the environment."""
    return create_app(os.environ[DATABASE_URL_VARIABLE], os.environ[SECRET_VARIABLE].encode())


def open_table(url: str) -> JobTable:
    """The job table on a ``sqlite:///`` or ``postgresql://`` URL."""
    store = Store.from_url(url)
    if store.kind == "sqlite":
        assert store.path is not None
        return SQLiteJobTable(store.path)
    if store.kind == "postgresql":
        password = f" password={store.password}" if store.password else ""
        return PostgresJobTable(
            f"host={store.host} port={store.port} user={store.user} dbname={store.dbname}"
            f"{password} connect_timeout=5"
        )
    raise ValueError(f"the baseline needs sqlite or postgresql, not {url!r}")


def _command(
    table: JobTable, job_id: str, change: Callable[[Row], Row], response: Response
) -> JobOut:
    try:
        job = table.change_job(job_id, change)
    except jobs.TransitionError as error:
        raise Problem(409, str(error)) from None
    if job is None:
        raise Problem(404, "Job not found.")
    response.headers["ETag"] = f'"{job["version"]}"'
    return JobOut.of(job)


async def _problem(request: Request, error: Problem) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    body = {"type": "about:blank", "title": "Error", "status": error.status, "detail": error.detail}
    return JSONResponse(body, error.status, headers, media_type="application/problem+json")


def _token(user: Row, secret: bytes) -> str:
    issued_at = int(time.time())
    claims: dict[str, Any] = {
        "sub": user["id"], "role": user["role"], "iat": issued_at,
        "exp": issued_at + TOKEN_TTL_SECONDS, "iss": ISSUER, "aud": AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
