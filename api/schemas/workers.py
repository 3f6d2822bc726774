"""Workers' bodies: claim, heartbeat, and a batch of commands on several jobs.

A batch's envelope is checked as a whole (a list of 1-100 objects); each command in it is
checked on its own (``OneCommand``), so one invalid command gets its own 422 and the others
still run.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, RootModel, SkipValidation

from api.schemas.base import (
    NOT_BLANK,
    WHOLE_NUMBER,
    Problem,
    RequestModel,
    ResponseModel,
    Timestamp,
)
from api.schemas.jobs import (
    Attempt,
    Completion,
    ErrorReport,
    Failure,
    JobOut,
    LeaseSeconds,
    OptionalLeaseSeconds,
    OptionalWorker,
    ProgressUpdate,
)
from domain.job import MAX_TYPE_CHARS, Job, JobStatus
from domain.receipts import MAX_IDEMPOTENCY_KEY_CHARS

MAX_CLAIM_TYPES = 20
MAX_CLAIM_LIMIT = 100
DEFAULT_LEASE_SECONDS = 30.0
MAX_WAIT_SECONDS = 30.0
MAX_BATCH_COMMANDS = 100
#: The longest job id a batch command may give (a UUID is 36 characters).
MAX_JOB_ID_CHARS = 100

JobType = Annotated[str, Field(min_length=1, max_length=MAX_TYPE_CHARS)]


class ClaimRequest(RequestModel):
    """What a worker asks for: which job types, how many jobs, for how long, how long to wait."""

    types: list[JobType] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CLAIM_TYPES,
        description="Claim only jobs of these types (1-20); default: any type.",
    )
    limit: Annotated[int, WHOLE_NUMBER] = Field(
        default=1, ge=1, le=MAX_CLAIM_LIMIT, description="At most this many jobs (1-100)."
    )
    lease_seconds: LeaseSeconds = Field(
        default=DEFAULT_LEASE_SECONDS,
        description="Each job's lease in seconds (5-3600), renewed by heartbeats and progress; "
        "when it passes, the job is rescued for another attempt.",
    )
    wait_seconds: float = Field(
        default=0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        allow_inf_nan=False,
        description="When nothing is due, wait up to this many seconds (0-30) for a job; the "
        "answer comes as soon as one is due.",
    )
    worker: OptionalWorker = None


class ClaimOut(ResponseModel):
    """The jobs claimed (each in its new attempt, holding a lease); empty when none was due."""

    items: list[JobOut] = Field(
        description="Highest priority first, then earliest runAt, then oldest."
    )


class HeartbeatRequest(RequestModel):
    """A running attempt's sign of life."""

    attempt: Attempt
    lease_seconds: OptionalLeaseSeconds = Field(
        default=None,
        description="Extend the lease to this many seconds from now (5-3600); default: the "
        "length last granted.",
    )


class HeartbeatOut(ResponseModel):
    """The attempt's lease after a heartbeat, and whether someone asked the job to stop."""

    id: UUID
    status: JobStatus
    attempt: int
    lease_expires_at: Timestamp | None
    cancel_requested: bool = Field(description="Stop, and acknowledge with fail or cancel.")

    @classmethod
    def of(cls, job: Job) -> HeartbeatOut:
        return cls(
            id=job.id,
            status=job.status,
            attempt=job.attempt,
            lease_expires_at=job.lease_expires_at,
            cancel_requested=job.cancel_requested,
        )


class _BatchCommand(RequestModel):
    job_id: str = Field(
        min_length=1,
        max_length=MAX_JOB_ID_CHARS,
        description="The job's id (a UUID); an unknown or malformed id is 404.",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        pattern=NOT_BLANK,
        description="Makes this command safe to send again, as the Idempotency-Key header does "
        "on its own route: a repeat of the same command with the same key gets the first "
        "result and records nothing; the same key on another command is 409.",
    )


class ProgressCommand(_BatchCommand, ProgressUpdate):
    """``POST /jobs/{id}/progress`` as a batch command."""

    op: Literal["progress"]


class ErrorCommand(_BatchCommand, ErrorReport):
    """``POST /jobs/{id}/errors`` as a batch command."""

    op: Literal["errors"]


class HeartbeatCommand(_BatchCommand, HeartbeatRequest):
    """``POST /jobs/{id}/heartbeat`` as a batch command (its result carries the full job)."""

    op: Literal["heartbeat"]


class CompleteCommand(_BatchCommand, Completion):
    """``POST /jobs/{id}/complete`` as a batch command."""

    op: Literal["complete"]


class FailCommand(_BatchCommand, Failure):
    """``POST /jobs/{id}/fail`` as a batch command."""

    op: Literal["fail"]


BatchCommand = Annotated[
    ProgressCommand | ErrorCommand | HeartbeatCommand | CompleteCommand | FailCommand,
    Field(discriminator="op"),
]


class OneCommand(RootModel[BatchCommand]):
    """Checks one command of a batch: ``OneCommand.model_validate(item).root``."""


def _anything_runs(schema: dict[str, Any]) -> None:
    """Documents what the batch takes: each command a BatchCommand, or anything else, which is
    checked on its own (and gets its own 422 result)."""
    commands = schema["properties"]["commands"]
    other = {"description": "Anything else: it gets its own 422 result, the others still run."}
    commands["items"] = {"anyOf": [commands["items"], other]}


class CommandBatch(RequestModel):
    """Commands on several jobs, run in order, each against the state the ones before it left."""

    model_config = ConfigDict(json_schema_extra=_anything_runs)

    commands: Annotated[
        list[SkipValidation[BatchCommand]],
        Field(
            min_length=1,
            max_length=MAX_BATCH_COMMANDS,
            description="1-100 commands; each has a jobId, an op and that op's body. An invalid "
            "command gets its own 422 result; the others still run.",
        ),
    ]


class BatchResult(ResponseModel):
    """One command's outcome: the status its own route would answer, and the job or a problem."""

    job_id: str | None = Field(description="The command's jobId, as sent (null: none).")
    status: int = Field(description="The HTTP status the command's own route would answer.")
    job: JobOut | None = Field(default=None, description="The job after it (2xx).")
    problem: Problem | None = Field(default=None, description="Why it was refused (4xx, 5xx).")

    def body(self) -> dict[str, Any]:
        """Its JSON object: ``job`` or ``problem``, whichever it has."""
        body: dict[str, Any] = {"jobId": self.job_id, "status": self.status}
        if self.job is not None:
            body["job"] = self.job.model_dump(mode="json")
        if self.problem is not None:
            body["problem"] = self.problem.body()
        return body


class BatchOut(ResponseModel):
    """The commands' outcomes, in command order."""

    results: list[BatchResult]
