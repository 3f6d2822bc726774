"""HTTP errors: ONE table from every error to its status, rendered as RFC 9457 problem details.

The domain's errors (``domain.errors``) and the API's own::

    ApiError
    ├── NotAuthenticatedError     no token, or one that is invalid, expired or no longer honoured
    ├── PermissionDeniedError     the caller's role may not do this
    └── ContentTooLargeError      the request body is over the limit

A request that fails validation is 422 with a hint for the usual curl mistakes: a JSON body
without ``Content-Type: application/json`` (422 rather than 415, as the contract answers every
invalid input), malformed JSON (line, column, what was expected), JSON sent to the token form,
and an unknown field close to a real one ("did you mean totalItems?").

Anything else that escapes a route is a bug: ``api.middleware`` logs it with the request id and
answers 500 without internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import get_close_matches
from http import HTTPStatus
from typing import Any, get_args

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from starlette.exceptions import HTTPException
from starlette.routing import Match

from api.schemas.base import Problem, ValidationProblem, rfc3339
from domain.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    JobConflictError,
    JobLedgerError,
    JobNotFoundError,
    LeaseLostError,
    LedgerUnavailableError,
    LoginThrottledError,
    NotDueError,
    PageNotFoundError,
    UserConflictError,
    UserNotFoundError,
    VersionMismatchError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: The methods a 405's ``Allow`` may name (those this API's routes answer).
ALLOW_CANDIDATES = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
TYPE_PREFIX = "urn:jobledger:problem:"
UNAVAILABLE_RETRY_AFTER_SECONDS = 1
#: How a hint about the whole body begins (it is not prefixed with a location in ``detail``).
WHOLE_BODY = "The body "


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


class TooManyStreamsError(ApiError):
    """Raised when the caller already has as many event streams open as one user may."""


class StreamsFullError(ApiError):
    """Raised when the server already serves as many event streams as it will."""


#: error class -> (status, problem type, title); the most specific class in an error's MRO wins.
PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    NotAuthenticatedError: (401, "not-authenticated", "Not authenticated"),
    PermissionDeniedError: (403, "forbidden", "Forbidden"),
    JobNotFoundError: (404, "not-found", "Not found"),
    UserNotFoundError: (404, "not-found", "Not found"),
    PageNotFoundError: (404, "not-found", "Not found"),
    JobConflictError: (409, "job-conflict", "Not allowed in the job's current state"),
    LeaseLostError: (409, "lease-lost", "The attempt no longer holds the job"),
    UserConflictError: (409, "user-conflict", "Conflicts with the existing users"),
    IdempotencyKeyReusedError: (409, "idempotency-key-reused", "Idempotency key reused"),
    VersionMismatchError: (412, "version-mismatch", "The job is at another version"),
    ContentTooLargeError: (413, "content-too-large", "Content too large"),
    InvalidInputError: (422, "invalid-input", "Invalid input"),
    LoginThrottledError: (429, "login-throttled", "Too many failed logins"),
    TooManyStreamsError: (429, "too-many-streams", "Too many event streams"),
    StreamsFullError: (503, "streams-full", "No room for another event stream"),
    LedgerUnavailableError: (503, "unavailable", "Service unavailable"),
}


def problem_for(error: Exception, request_id: str | None = None) -> JSONResponse:
    """Renders a known error as a problem response; re-raises an error the table does not know."""
    return problem_response(problem_of(error, request_id), _headers(error))


def problem_of(error: Exception, request_id: str | None = None) -> Problem:
    """The problem details of a known error; re-raises an error the table does not know."""
    entry = next((PROBLEMS[c] for c in type(error).__mro__ if c in PROBLEMS), None)
    if entry is None:
        raise error
    status, slug, title = entry
    problem = Problem(
        type=TYPE_PREFIX + slug, title=title, status=status, detail=_detail(error),
        request_id=request_id,
    )  # fmt: skip
    if isinstance(error, InvalidInputError):
        problem.errors = [ValidationProblem(loc=[error.field], msg=error.detail, type=slug)]
    if isinstance(error, LeaseLostError):
        problem.job_status, problem.attempt = error.status, error.current_attempt
    return problem


def _detail(error: Exception) -> str:
    if isinstance(error, NotDueError):
        return (
            f"Job {error.job_id} is not due before its runAt, {rfc3339(error.run_at)}; "
            "claim due jobs with POST /api/v1/jobs/claim."
        )
    return str(error)


def invalid_input(errors: Sequence[ValidationProblem], detail: str | None = None) -> Problem:
    """The 422 problem for these invalid values (``detail``: the first five, unless given)."""
    detail = detail or "; ".join(_located(e) for e in errors[:5])
    return Problem(
        type=TYPE_PREFIX + "invalid-input", title="Invalid input", status=422,
        detail=detail or "The request is invalid.", errors=list(errors),
    )  # fmt: skip


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
    if isinstance(error, LedgerUnavailableError | StreamsFullError):
        return {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
    return None


async def _known_error(request: Request, error: Exception) -> JSONResponse:
    return problem_for(error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    hints = _Hints(request, error.body)
    errors = [
        ValidationProblem(loc=list(e.get("loc", ())), msg=hints.message(e), type=e["type"])
        for e in error.errors()
    ]
    return problem_response(invalid_input(errors, hints.form_hint()))


def _located(error: ValidationProblem) -> str:
    """The error for the detail line: where, what; a message about the whole body stands alone."""
    if error.msg.startswith(WHOLE_BODY):
        return error.msg
    return f"{'.'.join(map(str, error.loc))}: {error.msg}"


class _Hints:
    """What to do instead, for the usual mistakes: the wrong content type, malformed JSON, JSON
    sent to a form, a misspelt field. Learnt from the matched route's body field, so it needs
    nothing from the schemas."""

    def __init__(self, request: Request, body: Any) -> None:
        self.content_type = request.headers.get("content-type", "")
        self.body = body
        route = request.scope.get("route")
        self.body_field: Any = getattr(route, "body_field", None)

    def message(self, error: Any) -> str:
        loc, msg = tuple(error.get("loc", ())), str(error.get("msg", ""))
        if error["type"] == "json_invalid":
            return self._malformed(loc, str(error.get("ctx", {}).get("error", msg)))
        if loc == ("body",) and isinstance(self.body, bytes):
            sent = self.content_type or "none"
            return (
                f"{WHOLE_BODY}was not read as JSON (Content-Type: {sent}): "
                "send Content-Type: application/json."
            )
        if error["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            guess = _close_match(loc[-1], list(_fields(self._model_at(loc[1:-1]))))
            if guess is not None:
                return f"{msg}; did you mean {guess}?"
        return msg

    def form_hint(self) -> str | None:
        """The message for JSON sent to a route that takes a form."""
        if self.body_field is None or not isinstance(self.body_field.field_info, params.Form):
            return None
        if not _is_json(self.content_type):
            return None
        model = _model_in(self.body_field.field_info.annotation)
        required = [alias for alias, field in _fields(model).items() if field.is_required()]
        fields = "&".join(f"{name}=..." for name in required)
        return (
            f"this endpoint takes a form: {fields} "
            "(Content-Type: application/x-www-form-urlencoded, as curl -d sends), not JSON."
        )

    def _malformed(self, loc: tuple[Any, ...], expected: str) -> str:
        position = loc[-1] if loc and isinstance(loc[-1], int) else None
        if not isinstance(self.body, str) or position is None:
            return f"{WHOLE_BODY}is not valid JSON: {expected}."
        line = self.body.count("\n", 0, position) + 1
        column = position - self.body.rfind("\n", 0, position)
        return f"{WHOLE_BODY}is not valid JSON: {expected} at line {line}, column {column}."

    def _model_at(self, path: tuple[Any, ...]) -> type[BaseModel] | None:
        if self.body_field is None:
            return None
        model = _model_in(self.body_field.field_info.annotation)
        for key in path:
            if isinstance(key, int):
                continue
            field = _fields(model).get(str(key))
            model = None if field is None else _model_in(field.annotation)
        return model


def _fields(model: type[BaseModel] | None) -> dict[str, FieldInfo]:
    """The model's fields by the name a client sends (its alias)."""
    if model is None:
        return {}
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (``Model``, ``Model | None``, ``list[Model]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        model = _model_in(argument)
        if model is not None:
            return model
    return None


def _close_match(sent: str, aliases: list[str]) -> str | None:
    """The alias ``sent`` most likely meant, ignoring case and underscores."""
    by_key = {alias.lower().replace("_", ""): alias for alias in aliases}
    matches = get_close_matches(sent.lower().replace("_", ""), list(by_key), n=1, cutoff=0.75)
    return by_key[matches[0]] if matches else None


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400:
        return _unparsable_body()
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) and error.detail else phrase
    problem = Problem(type="about:blank", title=phrase, status=error.status_code, detail=detail)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(problem, headers)


def _allowed_methods(request: Request) -> str:
    """Every method the request's path answers (RFC 9110 wants them all in ``Allow``; the
    framework names only those of the first route whose path matched)."""

    def answers(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)

    return ", ".join(filter(answers, ALLOW_CANDIDATES))


def _unparsable_body() -> JSONResponse:
    """The framework's 400 for a body it cannot parse (not UTF-8, too deep): invalid input."""
    problem = Problem(
        type=TYPE_PREFIX + "invalid-input",
        title="Invalid input",
        status=422,
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
