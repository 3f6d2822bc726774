"""``/api/v1/auth``: set up the first admin, log in (OAuth2 password flow), who am I, change my
password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from api.deps import AddressThrottleDep, CurrentUser, LedgerDep, PasswordsDep, TokensDep
from api.errors import problem_responses
from api.login import change_own_password, client_address, log_in
from api.routing import CheckedRoute
from api.schemas.users import LoginForm, PasswordChange, Setup, SetupOut, TokenOut, UserOut

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
    request: Request,
    form: Annotated[LoginForm, Form()],
    ledger: LedgerDep,
    passwords: PasswordsDep,
    tokens: TokensDep,
    throttle: AddressThrottleDep,
) -> TokenOut:
    """Logs in with the OAuth2 password form (``username`` is the email) and returns a token.

    Failed logins are throttled (429 with ``Retry-After``): 5 within 15 minutes from one client
    address refuse that address for that account; beyond 10 from all addresses each adds a delay
    of up to 60 seconds, and 50 refuse the account; 100 from one address refuse it for every
    account. The rest of the 15-minute window in each case.
    """
    user = log_in(
        ledger, passwords, form.username, form.password,
        address=client_address(request), throttle=throttle,
    )  # fmt: skip
    return TokenOut(access_token=tokens.issue(user), expires_in=tokens.ttl_seconds)


@router.get("/me", response_model=UserOut, responses=problem_responses(401))
def me(user: CurrentUser) -> UserOut:
    """Returns the caller."""
    return UserOut.of(user)


@router.patch("/me", response_model=UserOut, responses=problem_responses(401, 403, 413, 422, 429))
def change_my_password(
    request: Request,
    body: PasswordChange,
    user: CurrentUser,
    ledger: LedgerDep,
    passwords: PasswordsDep,
    throttle: AddressThrottleDep,
) -> UserOut:
    """Changes the caller's password and returns the caller.

    A wrong ``currentPassword`` is 403 (the token is fine, the proof is not) and counts as a failed
    login for the throttles of ``POST /auth/token``; a throttled address is 429. Tokens issued
    before the change stay valid until they expire.
    """
    changed = change_own_password(
        ledger, passwords, user, body.current_password, body.new_password,
        address=client_address(request), throttle=throttle,
    )  # fmt: skip
    return UserOut.of(changed)
