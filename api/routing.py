"""The route class of every router: the contract's order of checks, even for unparsable bodies.

FastAPI parses a JSON body before it resolves any dependency, so a body that is not JSON at all
(or not UTF-8) would answer 422 before the caller is even identified. This route class catches
that case and checks the token (401) and the role (403) first, as for any other request.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.deps import RoleIn, authenticate, current_user

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class CheckedRoute(APIRoute):
    """An API route whose malformed-body 422 never pre-empts a 401 or a 403."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        guards = _guards(self.dependant)
        if guards is None:
            return handler

        async def checked(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException) as error:
                if _unparsable(error):
                    await run_in_threadpool(_authorise, request, guards)
                raise

        return checked


def _unparsable(error: RequestValidationError | HTTPException) -> bool:
    """Whether the framework refused the body before any dependency ran."""
    if isinstance(error, HTTPException):
        return error.status_code == 400
    return any(e.get("type") == "json_invalid" for e in error.errors())


def _guards(dependant: Dependant) -> list[RoleIn] | None:
    """The role checks of a route that needs a signed-in caller; None when it is public."""
    calls: list[Any] = []
    pending = list(dependant.dependencies)
    while pending:
        sub = pending.pop()
        calls.append(sub.call)
        pending.extend(sub.dependencies)
    if current_user not in calls:
        return None
    return [call for call in calls if isinstance(call, RoleIn)]


def _authorise(request: Request, guards: list[RoleIn]) -> None:
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    state = request.app.state
    user = authenticate(token if scheme.lower() == "bearer" else None, state.ledger, state.tokens)
    for guard in guards:
        guard.check(user)
