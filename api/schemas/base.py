"""Base models, the timestamp format, and the RFC 9457 problem body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel


def rfc3339(moment: datetime) -> str:
    """The instant in UTC, RFC 3339 with microseconds (``2026-03-01T14:02:07.123456Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


#: A time in UTC, RFC 3339 with microseconds, exactly as stored.
Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def in_utc(moment: datetime) -> datetime:
    """The instant in UTC; a ValueError (422) for one UTC cannot hold (past years 1 or 9999)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time between years 1 and 9999 in UTC") from None


#: A time a client sends: RFC 3339 with a time zone (``Z`` or ``+02:00``), kept in UTC.
UtcInstant = Annotated[AwareDatetime, AfterValidator(in_utc)]


class RequestModel(BaseModel):
    """A request body: camelCase names only, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_alias=True, validate_by_name=False, extra="forbid"
    )


class ResponseModel(BaseModel):
    """A response body: built from Python names, sent with camelCase names."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class ValidationProblem(BaseModel):
    """One invalid value: where it is, what is wrong, and the kind of error."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    errors: list[ValidationProblem] | None = Field(
        default=None, description="The invalid values (validation errors only)."
    )
    request_id: str | None = Field(
        default=None,
        serialization_alias="requestId",
        description="Quote it when reporting a server error.",
    )
    job_status: str | None = Field(
        default=None,
        serialization_alias="jobStatus",
        description="The job's current status (lease-lost problems only).",
    )
    attempt: int | None = Field(
        default=None,
        description="The job's current attempt (lease-lost problems only).",
    )

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
