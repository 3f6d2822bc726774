"""User and auth bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from api.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from api.schemas.base import RequestModel, ResponseModel, Timestamp
from domain.user import MAX_EMAIL_CHARS, Role, User

_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: The emails a new account may have: an RFC 5321 address in ASCII (a dot-atom, ``@``, a domain
#: of LDH labels with at least one dot), as ``format: email`` means, and also within the ledger's
#: own rule (``domain.user.normalise_email``). RFC 5321 also bounds the part before ``@`` to 64
#: characters, which a pattern without look-ahead cannot say: ``_local_part_fits`` checks it.
EMAIL_PATTERN = f"^{_ATOM}(\\.{_ATOM})*@{_LABEL}(\\.{_LABEL})+$"
MAX_LOCAL_PART_CHARS = 64


def _local_part_fits(email: str) -> str:
    if len(email.rpartition("@")[0]) > MAX_LOCAL_PART_CHARS:
        raise ValueError(f"the part before @ must be at most {MAX_LOCAL_PART_CHARS} characters")
    return email


#: An email a client registers.
Email = Annotated[
    str,
    Field(
        max_length=MAX_EMAIL_CHARS,
        pattern=EMAIL_PATTERN,
        json_schema_extra={"format": "email"},
        description="An email address: ASCII, RFC 5321 (at most 64 characters before the @), "
        "with a dot in its domain.",
        examples=["ada@example.com"],
    ),
    AfterValidator(_local_part_fits),
]
Password = Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)
#: A role by its name (request models are strict, and JSON has no enums but their values).
RoleName = Annotated[Role, Field(strict=False)]


def _no_default(schema: dict[str, Any]) -> None:
    """Leaves a field's ``null`` default out of the document: leaving the field out is how a
    client keeps it, and ``null`` is not a value it may send."""
    schema.pop("default", None)


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

    email: Email
    password: str = Password


class SetupOut(ResponseModel):
    """The first admin, and a token to start with."""

    user: UserOut
    access_token: str


class UserCreate(RequestModel):
    """A new user's email, password and role."""

    email: Email
    password: str = Password
    role: RoleName


class UserUpdate(RequestModel):
    """Changes to a user: a new role, disabled or enabled, a new password (at least one; a field
    left out stays as it is)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    role: RoleName | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    disabled: bool | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    password: str | SkipJsonSchema[None] = Field(
        default=None,
        min_length=MIN_PASSWORD_CHARS,
        max_length=MAX_PASSWORD_CHARS,
        json_schema_extra=_no_default,
    )

    @field_validator("role", "disabled", "password", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null: leave the field out to keep it as it is")
        return value

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


class LoginForm(BaseModel):
    """The OAuth2 password grant's form (RFC 6749 4.3.2): ``username`` is the email; other
    parameters (``scope``, ``client_id``...) are ignored, as the standard asks."""

    grant_type: Literal["password"] = "password"
    username: str = Field(min_length=1, max_length=MAX_EMAIL_CHARS, description="The email.")
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


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
