"""``/api/v1/jobs/claim`` and ``/api/v1/jobs/commands``: what workers call on many jobs at once.

Both run off the event loop (a claim may wait for a job to be due) and answer once the read
model shows what they did, like every command.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from api.deps import CommandsDep, LedgerDep, WorkerUser, parse_job_id, worker_label
from api.errors import invalid_input, problem_of, problem_responses
from api.idempotency import IdempotencyKey, replayed
from api.responses import JSON_MEDIA_TYPE, json_bytes, model_response
from api.routes.commands import worker_command
from api.routing import CheckedRoute
from api.schemas.base import Problem, ValidationProblem
from api.schemas.jobs import JobOut
from api.schemas.workers import (
    BatchOut,
    BatchResult,
    ClaimOut,
    ClaimRequest,
    CommandBatch,
    OneCommand,
)
from domain.errors import JobLedgerError, JobNotFoundError
from domain.job import Job
from domain.ledger import JobLedger
from domain.receipts import Idempotency
from projections.claims import ClaimResult
from projections.readmodel import Commands

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/jobs", tags=["workers"], route_class=CheckedRoute)

ERRORS = problem_responses(401, 403, 413, 422, 503)
#: Threads that run a batch's commands on different jobs side by side (shared by all batches).
BATCH_THREADS = 16
_BATCH_THREADS = ThreadPoolExecutor(BATCH_THREADS, thread_name_prefix="batch-command")
#: A claim's errors: also 409, for an Idempotency-Key that answered another request.
CLAIM_ERRORS = problem_responses(401, 403, 409, 413, 422, 503)


@router.post("/claim", response_model=ClaimOut, responses=CLAIM_ERRORS)
async def claim_jobs(
    user: WorkerUser,
    commands: CommandsDep,
    key: IdempotencyKey,
    request: Request,
    body: ClaimRequest | None = None,
) -> Response:
    """Claims up to ``limit`` due jobs, each in a new attempt holding a lease; waits up to
    ``waitSeconds`` for one to be due (workers and admins). With ``Idempotency-Key``, a repeated
    claim gets the same jobs."""
    body = body or ClaimRequest()
    actor = str(user.id)
    claim = partial(
        commands.read_model.claim, actor=actor, worker=worker_label(user, body.worker),
        types=body.types, limit=body.limit, lease_seconds=body.lease_seconds,
        wait_seconds=body.wait_seconds,
        idempotency=None if key is None else key.idempotency(actor, _claimed_response),
    )  # fmt: skip
    result: ClaimResult = await anyio.to_thread.run_sync(
        _settled, commands, claim, limiter=request.app.state.claim_limiter
    )
    if result.answer is not None:
        return replayed(result.answer)
    return _claimed_response(result.jobs)


def _claimed_response(jobs: list[Job]) -> Response:
    return model_response(ClaimOut(items=[JobOut.of(job) for job in jobs]))


@router.post("/commands", response_model=BatchOut, responses=ERRORS)
async def run_commands(
    body: CommandBatch, user: WorkerUser, ledger: LedgerDep, commands: CommandsDep
) -> Response:
    """Runs commands on several jobs in order (progress, errors, heartbeat, complete, fail);
    each result has the status its own route would answer, and the job or a problem."""
    results = await anyio.to_thread.run_sync(
        _run_batch, ledger, commands, str(user.id), body.commands
    )
    return Response(json_bytes({"results": results}), media_type=JSON_MEDIA_TYPE)


def _settled(commands: Commands, claim: partial[ClaimResult]) -> ClaimResult:
    """The claim's result, once the read model shows the jobs it started (bounded wait)."""
    result = claim()
    _wait(commands, result.position)
    return result


def _run_batch(
    ledger: JobLedger, commands: Commands, actor: str, items: Sequence[Any]
) -> list[dict[str, Any]]:
    """Each command's result, in command order; answered once the read model shows them all.

    One job's commands run one after another, in order; different jobs' commands run side by
    side, so that their events share the store's commits (group commit) instead of waiting for
    one commit each.
    """
    results: list[dict[str, Any]] = [{} for _ in items]
    positions = [0] * len(items)

    def run(indexes: list[int]) -> None:
        for index in indexes:
            results[index], positions[index] = _run_one(ledger, actor, index, items[index])

    groups = list(_by_job(items).values())
    if len(groups) == 1:
        run(groups[0])
    else:
        for _ in _BATCH_THREADS.map(run, groups):
            pass
    _wait(commands, max(positions, default=0))
    return results


def _by_job(items: Sequence[Any]) -> dict[object, list[int]]:
    """The indexes of the commands on each job (a command with no usable jobId on its own)."""
    groups: dict[object, list[int]] = {}
    for index, item in enumerate(items):
        job_id = item.get("jobId") if isinstance(item, dict) else None
        groups.setdefault(job_id if isinstance(job_id, str) else index, []).append(index)
    return groups


def _run_one(ledger: JobLedger, actor: str, index: int, item: Any) -> tuple[dict[str, Any], int]:
    """One command's result (its JSON object) and the log position of its event (0: none)."""
    sent = item.get("jobId") if isinstance(item, dict) else None
    job_id = sent if isinstance(sent, str) else None
    try:
        command = OneCommand.model_validate(item).root
        run = worker_command(ledger, parse_job_id(command.job_id), actor, command)
        done = run(idempotency=_item_key(actor, command.idempotency_key, item))
    except ValidationError as error:
        problem = _unknown_job(ledger, job_id) or _invalid(error, index, item)
        return BatchResult(job_id=job_id, status=problem.status, problem=problem).body(), 0
    except JobLedgerError as error:
        problem = problem_of(error)
        return BatchResult(job_id=job_id, status=problem.status, problem=problem).body(), 0
    if done.answer is not None:
        replay: dict[str, Any] = json.loads(done.answer[1])
        return replay, done.position
    return _item_result(job_id, done.job), done.position


def _item_result(job_id: str | None, job: Job) -> dict[str, Any]:
    return BatchResult(job_id=job_id, status=200, job=JobOut.of(job)).body()


def _item_key(actor: str, key: str | None, item: dict[str, Any]) -> Idempotency | None:
    """An item's idempotency: its key, and a fingerprint of the item as sent."""
    if key is None:
        return None
    fingerprint = hashlib.sha256(
        b"POST /api/v1/jobs/commands\n" + json_bytes(item, sort_keys=True)
    ).hexdigest()
    job_id = item.get("jobId")

    def answer(job: Job) -> tuple[int, str]:
        return 200, json_bytes(_item_result(job_id, job)).decode()

    return Idempotency(actor, key, fingerprint, answer)


def _unknown_job(ledger: JobLedger, job_id: str | None) -> Problem | None:
    """The 404 its own route would answer first, when the command names no existing job."""
    if job_id is None:
        return None
    try:
        uuid = parse_job_id(job_id)
        if ledger.known_job(uuid) is None:
            ledger.get_job(uuid)
    except JobNotFoundError as error:
        return problem_of(error)
    return None


def _invalid(error: ValidationError, index: int, item: Any) -> Problem:
    """The 422 problem of an invalid command, located in the request body."""
    tag = item.get("op") if isinstance(item, dict) else None
    problems: list[ValidationProblem] = []
    for e in error.errors(include_url=False):
        loc = list(e["loc"])
        if loc and loc[0] == tag:
            loc = loc[1:]
        problems.append(
            ValidationProblem(loc=["body", "commands", index, *loc], msg=e["msg"], type=e["type"])
        )
    return invalid_input(problems)


def _wait(commands: Commands, position: int) -> None:
    if not commands.read_model.wait_for(position, commands.timeout):
        logger.warning(
            "The read model did not reach position %d within %.1f s; answering anyway.",
            position, commands.timeout,
        )  # fmt: skip
