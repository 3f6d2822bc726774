"""The baseline's bodies: the same camelCase JSON as jobledger's (DESIGN section 5)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from bench.crud_baseline.store import Row

MAX_ITEMS = 10**9


class RequestModel(BaseModel):
    """A request body: camelCase names only, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_alias=True, validate_by_name=False, extra="forbid"
    )


class ResponseModel(BaseModel):
    """A response body: built from Python names, sent with camelCase names."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )


class Setup(RequestModel):
    """The first admin."""

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=12, max_length=1024)


class JobCreate(RequestModel):
    """A new job."""

    job_type: str = Field(alias="type", min_length=1, max_length=100)
    data: Any = None
    total_items: int | None = Field(default=None, ge=1, le=MAX_ITEMS)


class ProgressUpdate(RequestModel):
    """How many items are done, and optionally a new total."""

    processed_items: int = Field(ge=0, le=MAX_ITEMS)
    total_items: int | None = Field(default=None, ge=1, le=MAX_ITEMS)


class Completion(RequestModel):
    """The job's result."""

    result: Any = None


Status = Literal["pending", "processing", "completed", "failed", "cancelled"]


class UserOut(ResponseModel):
    """A user."""

    id: str
    email: str
    role: str
    disabled: bool
    created_at: str


class SetupOut(ResponseModel):
    """The first admin and a token."""

    user: UserOut
    access_token: str


class JobSummaryOut(ResponseModel):
    """A job as lists show it."""

    id: str
    job_type: str = Field(serialization_alias="type")
    status: Status
    total_items: int | None
    processed_items: int
    progress: int
    error_count: int
    last_error: str | None
    created_by: str
    created_at: str
    started_at: str | None
    completed_at: str | None
    updated_at: str
    version: int

    @classmethod
    def of(cls, row: Row) -> JobSummaryOut:
        return cls.model_validate({**row, "job_type": row["type"]})


class JobOut(JobSummaryOut):
    """A job, in full."""

    data: Any
    error_log: list[dict[str, Any]]
    result: Any
    failure_reason: str | None

    @classmethod
    def of(cls, row: Row) -> JobOut:
        return cls.model_validate({
            **row, "job_type": row["type"], "data": _json(row["data"]),
            "error_log": json.loads(row["error_log"]), "result": _json(row["result"]),
        })


class JobList(ResponseModel):
    """A page of jobs."""

    items: list[JobSummaryOut]
    limit: int
    offset: int
    next_cursor: str | None = None


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
