"""User and auth bodies."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from api.schemas.base import RequestModel, ResponseModel, Timestamp
from domain.user import MAX_EMAIL_CHARS, Role, User

Email = Field(min_length=3, max_length=MAX_EMAIL_CHARS, examples=["ada@example.com"])
Password = Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)


class UserOut(ResponseModel):
    """A user, without secrets."""

    id: UUID
    email: str
    role: Role
    disabled: bool
    created_at: Timestamp

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            role=user.role,
            disabled=user.disabled,
            created_at=user.registered_at,
        )


class Setup(RequestModel):
    """The first admin's email and password."""

    email: str = Email
    password: str = Password


class SetupOut(ResponseModel):
    """The first admin, and a token to start with."""

    user: UserOut
    access_token: str


class UserCreate(RequestModel):
    """A new user's email, password and role."""

    email: str = Email
    password: str = Password
    role: Role


class UserUpdate(RequestModel):
    """Changes to a user: a new role, disabled or enabled, a new password (at least one)."""

    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(
        default=None, min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS
    )

    @model_validator(mode="after")
    def _not_empty(self) -> UserUpdate:
        if self.role is None and self.disabled is None and self.password is None:
            raise ValueError("give at least one of role, disabled, password")
        return self


class UserList(ResponseModel):
    """A page of users, in registration order."""

    items: list[UserOut]
    limit: int
    offset: int
    total: int


class TokenOut(BaseModel):
    """An OAuth2 access token response (the standard's own field names)."""

    model_config = ConfigDict(extra="forbid")

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class PasswordChange(RequestModel):
    """The caller's current password and the new one."""

    current_password: str = Field(max_length=MAX_PASSWORD_CHARS)
    new_password: str = Password
