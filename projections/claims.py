"""Claims: hand due jobs to workers, each to exactly one, with any number of API processes.

Candidates come from the view (``JobSummaryView.claimable``: due pending or retrying jobs in
claim order, served by an index). Each is then started through the ledger, whose save is checked
by the store's optimistic concurrency: of two claimers racing for one job, one records
``Started`` and the other's save conflicts, re-reads the job, finds it processing and moves on
to its next candidate (a *lost race*). Claimers of one process never race each other: a job
this process is claiming, or claimed at a position the view has not reached yet (it still
shows pending), is skipped.

A waiting claim (``wait_seconds``) that finds nothing due sleeps until the view moves on (a job
created, retried or sent back; in this process at once, from others' runners through the store)
or until the earliest ``run_at`` the view knows comes, whichever is first: no fixed poll loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.errors import JobConflictError, JobLedgerError, JobNotFoundError
from domain.job import Job
from domain.ledger import CommandResult, JobLedger
from domain.receipts import Idempotency
from projections.view import JobSummaryView

logger = logging.getLogger(__name__)

#: Candidates read per job asked for: spares for the races a busy store makes claimers lose.
SPARE_CANDIDATES = 2
#: Candidate reads per claim (see ``_claim_due``).
CANDIDATE_ROUNDS = 3
#: Threads that start the jobs of one claim side by side (so they share a commit).
STARTER_THREADS = 16
#: The longest sleep of a waiting claim between two looks at the view (a safety net for a
#: wake-up missed across processes; a wake-up in this process is immediate).
MAX_WAIT_STEP_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The jobs one claim started, and what it cost."""

    jobs: list[Job] = field(default_factory=list)
    #: The log position of the last ``Started`` this claim recorded (0: none).
    position: int = 0
    #: Candidates another claimer (another process) took first.
    lost_races: int = 0
    #: The answer stored for this claim's idempotency key, ``(status_code, body)``, when the
    #: claim is a repeat (it then claims nothing).
    answer: tuple[int, str] | None = None


class Claims:
    """Starts due jobs for workers; one instance per process, shared by its requests."""

    def __init__(
        self,
        ledger: JobLedger,
        view: JobSummaryView[Any],
        *,
        local: Callable[[], bool] = lambda: False,
    ) -> None:
        """``local()`` says whether this process's runner writes the view (its waits then
        need no look at the store)."""
        self.ledger = ledger
        self.view = view
        self._local = local
        self._lock = threading.Lock()
        #: Job id -> the position of its claim by this process (0 while being claimed).
        self._taken: dict[UUID, int] = {}
        #: The view positions that claims in flight read their candidates at (with counts).
        self._reading: Counter[int] = Counter()
        #: Lost races since this process started (for benchmarks and status).
        self.lost_races = 0
        self._starters = ThreadPoolExecutor(STARTER_THREADS, thread_name_prefix="claim-start")

    def claim(
        self,
        *,
        actor: str,
        worker: str | None,
        types: Collection[str] | None,
        limit: int,
        lease_seconds: float,
        wait_seconds: float = 0.0,
        idempotency: Idempotency | None = None,
    ) -> ClaimResult:
        """Starts up to ``limit`` due jobs (of ``types``, any when None), highest priority first,
        then earliest ``run_at``, then oldest; waits up to ``wait_seconds`` for one to be due.

        With ``idempotency``, a repeated claim gets the first one's answer and claims nothing.
        Its receipt is saved after the jobs are started (they are several commands): if the
        process dies between the two, the repeat claims other jobs, and the first ones come
        back when their leases pass.
        """
        if idempotency is not None and (receipt := self.ledger.find_receipt(idempotency)):
            return ClaimResult(answer=(receipt.status_code, receipt.body))
        deadline = time.monotonic() + wait_seconds
        while True:
            seen = self.view.observed
            result = self._claim_due(actor, worker, types, limit, lease_seconds)
            remaining = deadline - time.monotonic()
            if result.jobs or remaining <= 0:
                break
            self._wait_for_due(seen, types, remaining)
        if idempotency is not None:
            try:
                self.ledger.save_receipt(idempotency, result.jobs)
            except IntegrityError:
                logger.warning("claim %s: its key was answered meanwhile", idempotency.key)
        return result

    def _claim_due(
        self,
        actor: str,
        worker: str | None,
        types: Collection[str] | None,
        limit: int,
        lease_seconds: float,
    ) -> ClaimResult:
        """Starts due candidates in claim order, a wave at a time: the jobs of one wave start
        side by side, so their ``Started`` events share one commit (``domain.groupcommit``)
        and the claim holds its candidates for one commit, not one per job. When other
        claimers took every candidate first, reads again past them (a few times) rather than
        answer short."""

        def start(job_id: UUID) -> CommandResult:
            return self.ledger.start_job(
                job_id, actor=actor, worker=worker, lease_seconds=lease_seconds
            )

        jobs: list[Job] = []
        position = lost = 0
        for _ in range(CANDIDATE_ROUNDS):
            asked = (limit - len(jobs)) * SPARE_CANDIDATES + self._rivals()
            read_at, skip = self._begin_read()
            try:
                candidates = self.view.claimable(self.ledger.clock(), types, asked, skip)
                taken = (job_id for job_id in candidates if self._take(job_id, read_at))
                while len(jobs) < limit and (wave := list(islice(taken, limit - len(jobs)))):
                    try:
                        outcomes = self._start_all(wave, start)
                    except BaseException:
                        for job_id in wave:
                            self._release(job_id, 0)
                        raise
                    for job_id, outcome in zip(wave, outcomes, strict=True):
                        if isinstance(outcome, CommandResult):
                            self._release(job_id, outcome.position)
                            jobs.append(outcome.job)
                            position = max(position, outcome.position)
                        else:
                            self._release(job_id, 0)
                            lost += 1
            finally:
                self._end_read(read_at)
            if len(jobs) == limit or len(candidates) < asked:
                break
        if lost:
            with self._lock:
                self.lost_races += lost
        return ClaimResult(jobs, position, lost)

    def _rivals(self) -> int:
        """How many other claims of this process are reading candidates now: each may take
        one of the head rows first, so a claim reads that many more to spread past them."""
        with self._lock:
            return sum(self._reading.values())

    def close(self) -> None:
        """Lets the starter threads go (claims in flight finish first)."""
        self._starters.shutdown(wait=False)

    def _start_all(
        self, job_ids: list[UUID], start: Callable[[UUID], CommandResult]
    ) -> list[CommandResult | JobLedgerError]:
        """Each job's start, or the refusal that says another claimer took it first."""
        if len(job_ids) == 1:
            return [_outcome(start, job_ids[0])]
        return list(self._starters.map(lambda job_id: _outcome(start, job_id), job_ids))

    def _wait_for_due(self, seen: int, types: Collection[str] | None, remaining: float) -> None:
        """Sleeps until the view passes ``seen``, the next ``run_at`` comes, or ``remaining``
        seconds pass."""
        timeout = min(remaining, MAX_WAIT_STEP_SECONDS)
        next_run_at = self.view.next_run_at(types)
        if next_run_at is not None:
            until_due = (next_run_at - self.ledger.clock()).total_seconds()
            timeout = max(0.0, min(timeout, until_due))
        if timeout > 0:
            self.view.wait_for(seen + 1, timeout, local=self._local())

    def _begin_read(self) -> tuple[int, set[UUID]]:
        """The view position candidates are read at, and the jobs to leave out: those this
        process is claiming, or claimed beyond that position (the view still shows them due).
        A claim is forgotten once every claim in flight reads a view that shows it."""
        if not self._local():
            self.view.observe(self.view.position())
        read_at = self.view.observed
        with self._lock:
            self._reading[read_at] += 1
            oldest = min(self._reading)
            for job_id in [j for j, p in self._taken.items() if 0 < p <= oldest]:
                del self._taken[job_id]
            return read_at, set(self._taken)

    def _end_read(self, read_at: int) -> None:
        with self._lock:
            self._reading[read_at] -= 1
            if not self._reading[read_at]:
                del self._reading[read_at]

    def _take(self, job_id: UUID, read_at: int) -> bool:
        """Whether this claim may try the job (no other claim of this process has it, nor
        claimed it after the view this claim read)."""
        with self._lock:
            position = self._taken.get(job_id)
            if position is not None and (position == 0 or position > read_at):
                return False
            self._taken[job_id] = 0
            return True

    def _release(self, job_id: UUID, position: int) -> None:
        with self._lock:
            if position:
                self._taken[job_id] = position
            else:
                self._taken.pop(job_id, None)


def _outcome(
    start: Callable[[UUID], CommandResult], job_id: UUID
) -> CommandResult | JobLedgerError:
    """The start's result, or the conflict of a lost race (the job is no longer due)."""
    try:
        return start(job_id)
    except (JobConflictError, JobNotFoundError) as refusal:
        return refusal
