"""``/api/v1/users``: admins register, list and change users, and read their history."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.deps import AdminUser, CommandsDep, LedgerDep, PasswordsDep, SettingsDep
from api.errors import problem_responses
from api.policy import DEFAULT_PAGE_SIZE, PageLimit, page_size
from api.routing import CheckedRoute
from api.schemas.history import (
    DEFAULT_HISTORY_PAGE,
    ActorEmails,
    FromVersion,
    HistoryLimit,
    UserHistory,
    history_events,
    next_from_version,
)
from api.schemas.users import UserCreate, UserList, UserOut, UserUpdate
from domain.users import MAX_USER_OFFSET

router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=CheckedRoute)


@router.post(
    "", status_code=201, response_model=UserOut,
    responses=problem_responses(401, 403, 409, 413, 422, 503),
)
def create_user(
    body: UserCreate, admin: AdminUser, ledger: LedgerDep, passwords: PasswordsDep,
    response: Response,
) -> UserOut:
    """Registers a user with a role (admins only); 409 when the email is taken."""
    user = ledger.register_user(
        email=body.email, role=body.role, password_hash=passwords.hash(body.password),
        actor=str(admin.id),
    )
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserOut.of(user)


@router.get("", response_model=UserList, responses=problem_responses(401, 403, 422, 503))
def list_users(
    admin: AdminUser,
    ledger: LedgerDep,
    settings: SettingsDep,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_USER_OFFSET)] = 0,
) -> UserList:
    """Lists users in registration order (admins only)."""
    users, total = ledger.list_users(limit=page_size(limit, settings), offset=offset)
    return UserList(
        items=[UserOut.of(u) for u in users], limit=limit, offset=offset, total=total
    )


@router.get("/{user_id}", response_model=UserOut, responses=problem_responses(401, 403, 404, 422))
def get_user(user_id: UUID, admin: AdminUser, ledger: LedgerDep) -> UserOut:
    """Returns one user (admins only)."""
    return UserOut.of(ledger.get_user(user_id))


@router.patch(
    "/{user_id}", response_model=UserOut,
    responses=problem_responses(401, 403, 404, 409, 413, 422, 503),
)
def update_user(
    user_id: UUID, body: UserUpdate, admin: AdminUser, ledger: LedgerDep, passwords: PasswordsDep,
    commands: CommandsDep,
) -> UserOut:
    """Changes a user's role, disables or enables it, or sets a new password (admins only).

    The changes are made together or not at all; the answer comes once every API process
    refuses the user's tokens that the change invalidates.
    """
    password_hash = None if body.password is None else passwords.hash(body.password)
    user = ledger.update_user(
        user_id, role=body.role, password_hash=password_hash, disabled=body.disabled,
        actor=str(admin.id),
    )
    commands.shown(ledger.head())
    return UserOut.of(user)


@router.get(
    "/{user_id}/history", response_model=UserHistory,
    responses=problem_responses(401, 403, 404, 422, 503),
)
def get_user_history(
    user_id: UUID,
    admin: AdminUser,
    ledger: LedgerDep,
    from_version: FromVersion = 1,
    limit: HistoryLimit = DEFAULT_HISTORY_PAGE,
) -> UserHistory:
    """Returns a page of the user's events in version order (admins only); never a secret."""
    user = ledger.get_user(user_id)
    entries = ledger.user_history(user.id, from_version=from_version, limit=limit)
    return UserHistory(
        user_id=user.id,
        events=history_events(entries, ActorEmails(ledger, admin)),
        next_from_version=next_from_version(entries, limit, user.version),
    )
