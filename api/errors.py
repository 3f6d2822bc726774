"""HTTP errors: ONE table from every error to its status, rendered as RFC 9457 problem details.

The domain's errors (``domain.errors``) and the API's own::

    ApiError
    ├── NotAuthenticatedError     no token, or one that is invalid, expired or no longer honoured
    ├── PermissionDeniedError     the caller's role may not do this
    └── ContentTooLargeError      the request body is over the limit

Anything else that escapes a route is a bug: ``api.middleware`` logs it with the request id and
answers 500 without internals.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.schemas.base import Problem, ValidationProblem
from domain.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    JobConflictError,
    JobLedgerError,
    JobNotFoundError,
    LedgerUnavailableError,
    LoginThrottledError,
    UserConflictError,
    UserNotFoundError,
    VersionMismatchError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:jobledger:problem:"
UNAVAILABLE_RETRY_AFTER_SECONDS = 1


class ApiError(Exception):
    """Raised when the API refuses a request for a reason of its own (not the ledger's)."""


class NotAuthenticatedError(ApiError):
    """Raised when a request has no valid token (or a login has wrong credentials)."""

    def __init__(self, detail: str, *, token_given: bool = False) -> None:
        self.token_given = token_given
        super().__init__(detail)


class PermissionDeniedError(ApiError):
    """Raised when the caller's role may not call this route or act on this job."""


class ContentTooLargeError(ApiError):
    """Raised when a request body is larger than the API accepts."""


#: error class -> (status, problem type, title); the most specific class in an error's MRO wins.
PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    NotAuthenticatedError: (401, "not-authenticated", "Not authenticated"),
    PermissionDeniedError: (403, "forbidden", "Forbidden"),
    JobNotFoundError: (404, "not-found", "Not found"),
    UserNotFoundError: (404, "not-found", "Not found"),
    JobConflictError: (409, "job-conflict", "Not allowed in the job's current state"),
    UserConflictError: (409, "user-conflict", "Conflicts with the existing users"),
    VersionMismatchError: (412, "version-mismatch", "The job is at another version"),
    ContentTooLargeError: (413, "content-too-large", "Content too large"),
    IdempotencyKeyReusedError: (422, "idempotency-key-reused", "Idempotency key reused"),
    InvalidInputError: (422, "invalid-input", "Invalid input"),
    LoginThrottledError: (429, "login-throttled", "Too many failed logins"),
    LedgerUnavailableError: (503, "unavailable", "Service unavailable"),
}


def problem_for(error: Exception, request_id: str | None = None) -> JSONResponse:
    """Renders a known error as a problem response; re-raises an error the table does not know."""
    entry = next((PROBLEMS[c] for c in type(error).__mro__ if c in PROBLEMS), None)
    if entry is None:
        raise error
    status, slug, title = entry
    errors = None
    if isinstance(error, InvalidInputError):
        errors = [ValidationProblem(loc=[error.field], msg=error.detail, type=slug)]
    problem = Problem(
        type=TYPE_PREFIX + slug, title=title, status=status, detail=str(error), errors=errors,
        request_id=request_id,
    )
    return problem_response(problem, _headers(error))


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _headers(error: Exception) -> dict[str, str] | None:
    if isinstance(error, NotAuthenticatedError):
        challenge = 'Bearer error="invalid_token"' if error.token_given else "Bearer"
        return {"WWW-Authenticate": challenge}
    if isinstance(error, LoginThrottledError):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, LedgerUnavailableError):
        return {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
    return None


async def _known_error(request: Request, error: Exception) -> JSONResponse:
    return problem_for(error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        ValidationProblem(loc=list(e.get("loc", ())), msg=str(e.get("msg", "")), type=e["type"])
        for e in error.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors[:5])
    problem = Problem(
        type=TYPE_PREFIX + "invalid-input", title="Invalid input", status=422,
        detail=detail or "The request is invalid.", errors=errors,
    )
    return problem_response(problem)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400:
        return _unparsable_body()
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) and error.detail else phrase
    problem = Problem(type="about:blank", title=phrase, status=error.status_code, detail=detail)
    return problem_response(problem, dict(error.headers or {}))


def _unparsable_body() -> JSONResponse:
    """The framework's 400 for a body it cannot parse (not UTF-8, too deep): invalid input."""
    problem = Problem(
        type=TYPE_PREFIX + "invalid-input", title="Invalid input", status=422,
        detail="The body could not be parsed: send UTF-8 JSON (or the form the route takes).",
        errors=[ValidationProblem(loc=["body"], msg="could not be parsed", type="body_invalid")],
    )
    return problem_response(problem)


def install_error_handlers(app: FastAPI) -> None:
    """Registers the handlers that turn every known error into a problem response."""
    app.add_exception_handler(JobLedgerError, _known_error)
    app.add_exception_handler(ApiError, _known_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, all problem details."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
