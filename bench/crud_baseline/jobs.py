"""The job rules of DESIGN section 2 that the load uses, as changes to a mutable row."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.crud_baseline.store import Row

PENDING, PROCESSING, COMPLETED = "pending", "processing", "completed"


class TransitionError(Exception):
    """Raised when a command is not allowed in the job's state (HTTP 409)."""


def now() -> str:
    """The current time, RFC 3339 in UTC with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_job(job_type: str, data: Any, total_items: int | None, actor: str) -> Row:
    """A pending job's first row."""
    at = now()
    return {
        "id": str(uuid.uuid4()), "type": job_type, "status": PENDING,
        "data": json.dumps(data), "total_items": total_items, "processed_items": 0,
        "progress": 0, "error_count": 0, "error_log": "[]", "last_error": None,
        "result": None, "failure_reason": None, "created_by": actor, "created_at": at,
        "started_at": None, "completed_at": None, "updated_at": at, "version": 1,
    }


def start(job: Row) -> Row:
    _require(job, PENDING, "start")
    at = now()
    return {**job, "status": PROCESSING, "started_at": at, "updated_at": at,
            "version": job["version"] + 1}


def update_progress(job: Row, processed: int, total: int | None) -> Row:
    _require(job, PROCESSING, "update the progress of")
    total = job["total_items"] if total is None else total
    if processed < job["processed_items"]:
        raise TransitionError("The processed items may not go down.")
    if total is not None and processed > total:
        raise TransitionError("The processed items may not exceed the total.")
    progress = min(processed * 100 // total, 99) if total else 0
    return {**job, "processed_items": processed, "total_items": total, "progress": progress,
            "updated_at": now(), "version": job["version"] + 1}


def complete(job: Row, result: Any) -> Row:
    _require(job, PROCESSING, "complete")
    at = now()
    return {**job, "status": COMPLETED, "progress": 100, "result": json.dumps(result),
            "completed_at": at, "updated_at": at, "version": job["version"] + 1}


def _require(job: Row, status: str, verb: str) -> None:
    if job["status"] != status:
        raise TransitionError(f"Cannot {verb} a {job['status']} job.")
