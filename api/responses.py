"""Responses of a known shape, serialised once.

A route that returns a model has FastAPI validate it again against its ``response_model`` before
serialising it; these build the JSON body directly. Routes still declare ``response_model``, so
the OpenAPI document shows the same schema.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel

from api.schemas.jobs import JobOut, summary_json
from domain.job import Job
from projections.query import JobPage

JSON_MEDIA_TYPE = "application/json"


def json_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    """A value made of JSON types, as JSON: by orjson, or by the standard library when it holds
    an integer beyond 64 bits (JSON allows any integer; orjson refuses those, and would read
    them back as floats)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except TypeError:
        text = json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False)
        return text.encode()


def model_response(
    model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The model as JSON (its own serialisation: camelCase names, RFC 3339 times)."""
    return Response(
        model.model_dump_json(),
        status_code=status_code,
        headers=headers,
        media_type=JSON_MEDIA_TYPE,
    )


def job_response(
    job: Job, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The full job (``JobOut``), with its version as ``ETag``."""
    return model_response(
        JobOut.of(job),
        status_code=status_code,
        headers={"ETag": f'"{job.version}"', **(headers or {})},
    )


def job_list_response(page: JobPage) -> Response:
    """A page of jobs (``JobList``): its summaries, limit, offset and next cursor."""
    body = {
        "items": [summary_json(row) for row in page.items],
        "limit": page.limit,
        "offset": page.offset,
        "nextCursor": page.next_cursor,
    }
    return Response(orjson.dumps(body), media_type=JSON_MEDIA_TYPE)
