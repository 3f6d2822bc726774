"""Base models, the timestamp format, and the RFC 9457 problem body."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
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


#: The characters ``str.strip`` removes (Python's whitespace), spelt out, because the regex
#: engines that read a pattern (the document's readers, pydantic's, Python's) disagree on ``\s``.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: Some character other than whitespace (a pattern, so the document says it too).
NOT_BLANK = f"[^{WHITESPACE}]"
#: A text the ledger keeps (``domain.inputs.text``): not only whitespace, and no NUL anywhere.
TEXT = f"^[^\\x00]*[^\\x00{WHITESPACE}][^\\x00]*$"

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def utc_instant(value: Any) -> datetime:
    """An RFC 3339 time with its offset (a string, nothing else) as the instant in UTC.

    An instant beyond what a UTC time holds here (before year 1 or after 9999 once in UTC, as
    ``9999-12-31T23:30:00-01:00``) is held at the nearest one that it holds: later or earlier
    than every time the ledger records, it answers the same.
    """
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 time with a time zone, like 2026-03-01T14:02:07Z")
    moment = datetime.fromisoformat(value.upper())
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


#: A time a client sends: RFC 3339 with a time zone (``Z`` or ``+02:00``), kept in UTC.
UtcInstant = Annotated[
    datetime,
    BeforeValidator(utc_instant),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: Marks an ``int`` as JSON Schema's integer: ``3``, or ``3.0`` (a number without a fraction),
#: never ``"3"`` or ``true`` (request models are strict). Put it after the field's constraints:
#: ``Annotated[int, Field(ge=1), WHOLE_NUMBER]`` (before them, the document loses them).
WHOLE_NUMBER = BeforeValidator(_whole)


class RequestModel(BaseModel):
    """A request body: camelCase names only, unknown fields rejected, and JSON's own types only
    (strict: no number from a string, no boolean from 0 or 1; ``Integer`` for integers)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        strict=True,
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
