"""``/api/v1/auth``: set up the first admin, log in (OAuth2 password flow), who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import CurrentUser, LedgerDep, PasswordsDep, TokensDep
from api.errors import problem_responses
from api.login import log_in
from api.routing import CheckedRoute
from api.schemas.users import Setup, SetupOut, TokenOut, UserOut

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=CheckedRoute)


@router.post(
    "/setup", status_code=201, response_model=SetupOut, responses=problem_responses(409, 413, 422)
)
def set_up(body: Setup, ledger: LedgerDep, passwords: PasswordsDep, tokens: TokensDep) -> SetupOut:
    """Creates the first admin and returns a token for it; works once (409 once any user exists)."""
    user = ledger.set_up_admin(email=body.email, password_hash=passwords.hash(body.password))
    return SetupOut(user=UserOut.of(user), access_token=tokens.issue(user))


@router.post("/token", response_model=TokenOut, responses=problem_responses(401, 413, 422, 429))
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ledger: LedgerDep,
    passwords: PasswordsDep,
    tokens: TokensDep,
) -> TokenOut:
    """Logs in with the OAuth2 password form (``username`` is the email) and returns a token."""
    user = log_in(ledger, passwords, form.username, form.password)
    return TokenOut(access_token=tokens.issue(user), expires_in=tokens.ttl_seconds)


@router.get("/me", response_model=UserOut, responses=problem_responses(401))
def me(user: CurrentUser) -> UserOut:
    """Returns the caller."""
    return UserOut.of(user)
