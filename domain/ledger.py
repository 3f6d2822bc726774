"""JobLedger: the job ledger's use cases, as one event-sourced application.

Every command follows the same path: load the job, call one command on it, save its event.
Commands on one job run one at a time within a process; across processes the store's
optimistic-concurrency check decides, and a command that loses the race is retried against the
fresh state, so the job's rules (not the race) decide the outcome. Commands saving at the same
moment share one transaction (``domain.groupcommit``); each still answers only once its own
event is committed.

Commands that depend on the time read ``clock()`` before the job decides (tests set it), and the
retry backoff comes from the environment (``JOBLEDGER_RETRY_BASE_SECONDS``,
``JOBLEDGER_RETRY_MAX_SECONDS``; ``JOBLEDGER_MAX_ATTEMPTS`` is the default attempts of a job).

Jobs this process saved or read recently are kept in a cache. A command first runs against the
cached state without reading the store: if another process changed the job meanwhile, the save
conflicts on the version (or the rules refuse the stale state), and the command runs again
against the fresh state. Reads catch up with the store first, unless this process's copy is
known to be at least as new as the view (``current_job``, see ``domain.cache``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, OperationalError, PersistenceError

from domain.audit import TIME_INDEX_STRIDE, JobAudit
from domain.backoff import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_MAX_SECONDS,
    Backoff,
)
from domain.cache import AggregateCache
from domain.errors import (
    ConcurrencyExhaustedError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    JobConflictError,
    JobLedgerError,
    JobNotFoundError,
    LedgerUnavailableError,
    VersionMismatchError,
)
from domain.groupcommit import GroupCommit
from domain.inputs import integer
from domain.job import MAX_MAX_ATTEMPTS, MIN_MAX_ATTEMPTS, Job
from domain.receipts import CommandReceipt, Idempotency
from domain.retries import store_errors, until_saved
from domain.users import UserAccounts

logger = logging.getLogger(__name__)

IDEMPOTENCY_NAMESPACE = UUID("6f0d52a4-5b1e-4d38-9d57-0a8f6c2d7e11")
MAX_IDEMPOTENCY_KEY_CHARS = 200
#: The version a conditional command expects the job at: one, or any of several (none of an
#: empty collection); None for an unconditional command.
ExpectedVersion = int | Collection[int] | None


@dataclass(frozen=True, slots=True)
class JobSave:
    """A job and the new events a command gave it, waiting to be written (with the command's
    receipt, when it has an idempotency key)."""

    job: Job
    events: Sequence[Any]
    receipt: CommandReceipt | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: the job after it, and the log position of its last event."""

    job: Job
    #: Notification id of the last event this command recorded (or the log's head on a replay).
    position: int
    #: True when an idempotent create found the job it had already created, or a command's
    #: idempotency key its receipt.
    replayed: bool = False
    #: The answer stored with the receipt, ``(status_code, body)``, on a replay of a command.
    answer: tuple[int, str] | None = None


class JobLedger(UserAccounts, JobAudit, Application[UUID]):
    """The job ledger: create and drive jobs, and read them back."""

    name = "jobledger"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Job: TIME_INDEX_STRIDE}
    env: ClassVar[dict[str, str]] = {"COMPRESSOR_TOPIC": ""}
    max_attempts = 20
    lock_stripes = 256
    job_cache_size = 4096
    #: Setting: how long a command may wait for the store, from its arrival (decimal seconds;
    #: unset: as long as the store's own timeouts allow).
    WRITE_TIMEOUT_SECONDS = "WRITE_TIMEOUT_SECONDS"
    #: Settings (``JOBLEDGER_`` + the name in the environment): the retry backoff's base and
    #: cap (decimal seconds), and the attempts a job gets unless its creator says.
    RETRY_BASE_SECONDS = "RETRY_BASE_SECONDS"
    RETRY_MAX_SECONDS = "RETRY_MAX_SECONDS"
    MAX_ATTEMPTS = "MAX_ATTEMPTS"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._locks = [threading.Lock() for _ in range(self.lock_stripes)]
        self._jobs = AggregateCache(self.events, self._load, Job.clone, self.job_cache_size)
        self._commits: GroupCommit[JobSave, int] = GroupCommit(
            self._write_jobs, is_timeout=lambda error: isinstance(error, OperationalError)
        )
        timeout = self.env.get(self.WRITE_TIMEOUT_SECONDS)
        self._write_timeout = float(timeout) if timeout else None
        self._listeners: list[Callable[[int], None]] = []
        #: The time commands run at (tests replace it to let leases and backoffs pass).
        self.clock: Callable[[], datetime] = _utc_now
        self.backoff = Backoff(
            _env_seconds(self.env.get(self.RETRY_BASE_SECONDS), DEFAULT_RETRY_BASE_SECONDS),
            _env_seconds(self.env.get(self.RETRY_MAX_SECONDS), DEFAULT_RETRY_MAX_SECONDS),
        )
        configured = self.env.get(self.MAX_ATTEMPTS)
        self.default_max_attempts = integer(
            "JOBLEDGER_MAX_ATTEMPTS", int(configured) if configured else DEFAULT_MAX_ATTEMPTS,
            MIN_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS,
        )  # fmt: skip

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Calls ``listener(position)`` after each save in this process (wakes log followers)."""
        self._listeners.append(listener)

    def create_job(
        self,
        *,
        job_type: str,
        data: Any = None,
        total_items: int | None = None,
        actor: str,
        idempotency_key: str | None = None,
        priority: int = 0,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
    ) -> CommandResult:
        """Creates a pending job, due at ``run_at`` (default: now); with an idempotency key, a
        retry returns the same job."""
        job_id = uuid4() if idempotency_key is None else _idempotent_id(actor, idempotency_key)
        attempts = self.default_max_attempts if max_attempts is None else max_attempts
        deadline = self._deadline()
        lock = self._acquire(job_id, deadline)
        try:
            with store_errors():
                job = Job.create(
                    job_id=job_id, job_type=job_type, data=data, total_items=total_items,
                    actor=actor, now=self.clock(), priority=priority, run_at=run_at,
                    max_attempts=attempts,
                )  # fmt: skip
                try:
                    return CommandResult(job, self._save_job(job, deadline))
                except IntegrityError:
                    replay = self._replay_create(job, same_run_at=run_at is not None)
        finally:
            lock.release()
        if idempotency_key is None:
            # A new random id conflicts only with this command itself: the store retried a
            # commit whose answer was lost, and the first try had landed.
            return CommandResult(replay.job, replay.position)
        return replay

    def start_job(
        self,
        job_id: UUID,
        *,
        actor: str,
        worker: str | None = None,
        lease_seconds: float | None = None,
        expected_version: ExpectedVersion = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Starts the next attempt of a due job (a claim of that job); with ``lease_seconds``
        the attempt holds a lease, and is rescued when it passes."""
        return self._execute(
            job_id, expected_version,
            lambda job: job.start(
                actor=actor, now=self.clock(), worker=worker, lease_seconds=lease_seconds
            ),
            idempotency=idempotency,
        )  # fmt: skip

    def heartbeat(
        self,
        job_id: UUID,
        attempt: int,
        *,
        actor: str,
        lease_seconds: float | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Keeps a running attempt's lease alive (records an event only past half the lease)."""
        return self._execute(
            job_id, None,
            lambda job: job.heartbeat(
                attempt, actor=actor, now=self.clock(), lease_seconds=lease_seconds
            ),
            trust_cache=False,
            idempotency=idempotency,
        )  # fmt: skip

    def update_progress(
        self,
        job_id: UUID,
        processed_items: int,
        total_items: int | None = None,
        *,
        actor: str,
        attempt: int | None = None,
        lease_seconds: float | None = None,
        expected_version: ExpectedVersion = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Records how far a processing job has got (and extends its lease)."""
        return self._execute(
            job_id,
            expected_version,
            lambda job: job.update_progress(
                processed_items, total_items, actor=actor, now=self.clock(), attempt=attempt,
                lease_seconds=lease_seconds,
            ),
            idempotency=idempotency,
        )  # fmt: skip

    def log_error(
        self,
        job_id: UUID,
        message: str,
        item: str | None = None,
        details: Any = None,
        *,
        actor: str,
        attempt: int | None = None,
        expected_version: ExpectedVersion = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Records an error met while running a job."""
        return self._execute(
            job_id,
            expected_version,
            lambda job: job.log_error(message, item, details, actor=actor, attempt=attempt),
            idempotency=idempotency,
        )

    def complete_job(
        self,
        job_id: UUID,
        result: Any = None,
        *,
        actor: str,
        attempt: int | None = None,
        expected_version: ExpectedVersion = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Marks a processing job as completed."""
        return self._execute(
            job_id,
            expected_version,
            lambda job: job.complete(result, actor=actor, attempt=attempt),
            idempotency=idempotency,
        )

    def fail_job(
        self,
        job_id: UUID,
        reason: str,
        *,
        actor: str,
        attempt: int | None = None,
        retry: bool = True,
        retry_in_seconds: float | None = None,
        expected_version: ExpectedVersion = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Fails the running attempt (retried while attempts are left and ``retry`` holds), or
        a job that is not running."""
        return self._execute(
            job_id,
            expected_version,
            lambda job: job.fail(
                reason, actor=actor, now=self.clock(), backoff=self.backoff, attempt=attempt,
                retry=retry, retry_in_seconds=retry_in_seconds,
            ),
            idempotency=idempotency,
        )  # fmt: skip

    def cancel_job(
        self,
        job_id: UUID,
        reason: str | None = None,
        *,
        actor: str,
        attempt: int | None = None,
        ask_running: bool = True,
        expected_version: ExpectedVersion = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Cancels a job that is not running, or asks a running one to stop (``ask_running``);
        its worker (``attempt``) cancels at once."""
        return self._execute(
            job_id,
            expected_version,
            lambda job: job.cancel(reason, actor=actor, attempt=attempt, ask_running=ask_running),
            trust_cache=False,
            idempotency=idempotency,
        )

    def retry_job(
        self,
        job_id: UUID,
        max_attempts: int | None = None,
        *,
        actor: str,
        expected_version: ExpectedVersion = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Sends a failed or cancelled job back to pending for more attempts."""
        return self._execute(
            job_id,
            expected_version,
            lambda job: job.retry(max_attempts, actor=actor, now=self.clock()),
            idempotency=idempotency,
        )

    def expire_lease(self, job_id: UUID, attempt: int, lease_expires_at: datetime) -> CommandResult:
        """Ends an attempt whose lease passed, as the sweeper read it; LeaseRenewedError when
        the job moved on meanwhile (a heartbeat, an end)."""
        return self._execute(
            job_id, None,
            lambda job: job.expire_lease(
                attempt, lease_expires_at, now=self.clock(), backoff=self.backoff
            ),
            trust_cache=False,
        )  # fmt: skip

    def get_job(self, job_id: UUID, version: int | None = None) -> Job:
        """Returns the job, now or as it was at ``version``."""
        with store_errors():
            return self._load(job_id, version) if version is not None else self._jobs.fresh(job_id)

    def current_job(self, job_id: UUID) -> Job | None:
        """The job as this process knows it, when that is at least as new as the view, without
        reading the store; None when it cannot tell (see ``domain.cache``)."""
        return self._jobs.current(job_id)

    def known_job(self, job_id: UUID) -> Job | None:
        """The job as this process last saw it, without reading the store; None if unseen.

        It may be behind the store, but what never changes (its id, type and creator) is right:
        enough to decide who may see it before a command runs against the fresh state.
        """
        return self._jobs.cached(job_id)

    def view_reported(self) -> None:
        """Called by this process's projection runner when it becomes the active one: from now
        on it calls :meth:`view_shows` before the view shows any event."""
        self._jobs.reported()
        self._users.reported()

    def view_unreported(self) -> None:
        """Called by this process's projection runner before it stops being the active one."""
        self._jobs.unreported()
        self._users.unreported()

    def view_shows(self, entries: Sequence[tuple[Any, ...]]) -> None:
        """The view is about to show these log entries (``(position, UUID.int, version, ...)``
        tuples): cached copies older than them are no longer current."""
        versions = [(entry[1], entry[2]) for entry in entries]
        self._jobs.shown(versions)
        self._users.shown(versions)

    def writes_in_flight(self) -> int:
        """Commands of this process waiting for, or in, a write to the store."""
        return self._commits.in_flight

    def head(self) -> int:
        """Returns the notification id of the newest event in the log (0 when empty)."""
        with store_errors():
            return self.recorder.max_notification_id() or 0

    def take_snapshot(self, *args: Any, **kwargs: Any) -> None:
        """Takes a snapshot; a failure is logged, never raised: the command's event is saved."""
        try:
            super().take_snapshot(*args, **kwargs)
        except PersistenceError:
            logger.warning(
                "Could not take a snapshot; loads stay correct but slower.", exc_info=True
            )

    def _notify(self, recordings: list[Any]) -> None:
        if recordings:
            position = recordings[-1].notification.id
            for listener in self._listeners:
                listener(position)

    def _execute(
        self,
        job_id: UUID,
        expected_version: ExpectedVersion,
        command: Callable[[Job], None],
        *,
        trust_cache: bool = True,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Runs one command on the job and saves its events (and its receipt, with an
        idempotency key: a key already answered replays that answer, whatever the job's state).

        The receipt is looked for only when the first try cannot go ahead: when the rules or
        the expected version refuse it, or when its save lost a race, which a receipt already
        stored under the key makes it do. A first-time key, the common case, costs no read.
        ``trust_cache=False`` for commands that may record nothing (a heartbeat, a repeated
        cancel request): an answer without an event is never checked by a save, so it must
        come from the store's state."""
        deadline = self._deadline()
        tries = 0

        def attempt(job: Job) -> CommandResult:
            nonlocal tries
            tries += 1
            replay = self._replay(idempotency, job) if idempotency and tries > 1 else None
            if replay is not None:
                return replay
            try:
                if expected_version is not None and not _is_expected(job.version, expected_version):
                    raise VersionMismatchError(job_id, expected_version, job.version)
                command(job)
            except JobLedgerError:
                replay = self._replay(idempotency, job) if idempotency else None
                if replay is not None:
                    return replay
                raise
            receipt = None if idempotency is None else idempotency.receipt(job)
            if not job.pending_events and receipt is None:
                return CommandResult(job, 0)
            return CommandResult(job, self._save_job(job, deadline, receipt))

        lock = self._acquire(job_id, deadline)
        try:
            with store_errors():
                return until_saved(
                    attempt,
                    lambda: self._jobs.fresh(job_id),
                    cached=self._jobs.cached(job_id) if trust_cache else None,
                    stale=(JobConflictError, VersionMismatchError),
                    attempts=self.max_attempts,
                    exhausted=lambda: ConcurrencyExhaustedError(job_id, self.max_attempts),
                )
        finally:
            lock.release()

    def _replay_create(self, attempted: Job, *, same_run_at: bool) -> CommandResult:
        original = self._load(attempted.id, version=1)
        same_payload = (
            original.job_type == attempted.job_type
            and original.total_items == attempted.total_items
            and original.priority == attempted.priority
            and original.initial_max_attempts == attempted.initial_max_attempts
            and (not same_run_at or original.run_at == attempted.run_at)
            and json.loads(original.data_json) == json.loads(attempted.data_json)
        )
        if not same_payload:
            raise IdempotencyKeyReusedError(attempted.id)
        return CommandResult(self._jobs.fresh(attempted.id), self.head(), replayed=True)

    def _load(self, job_id: UUID, version: int | None = None) -> Job:
        try:
            job: Job = self.repository.get(job_id, version=version)
        except AggregateNotFoundError:
            raise JobNotFoundError(job_id) from None
        if not isinstance(job, Job):
            raise JobNotFoundError(job_id)
        return job

    def find_receipt(self, idempotency: Idempotency) -> CommandReceipt | None:
        """The receipt stored for this caller's key, if any (IdempotencyKeyReusedError when it
        answered another request)."""
        try:
            receipt: Any = self.repository.get(idempotency.receipt_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(receipt, CommandReceipt):
            return None
        if receipt.fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReusedError()
        return receipt

    def save_receipt(self, idempotency: Idempotency, outcome: Any) -> None:
        """Saves a receipt on its own, for an answer made of several commands (a claim);
        IntegrityError when the key was answered meanwhile."""
        receipt = idempotency.receipt(outcome)
        with store_errors():
            self.save(receipt)

    def _replay(self, idempotency: Idempotency, job: Job) -> CommandResult | None:
        receipt = self.find_receipt(idempotency)
        if receipt is None:
            return None
        return CommandResult(
            job, self.head(), replayed=True, answer=(receipt.status_code, receipt.body)
        )

    def _save_job(
        self, job: Job, deadline: float | None, receipt: CommandReceipt | None = None
    ) -> int:
        """Saves the job's new events (and the command's receipt), in a transaction shared
        with the commands saving at the same moment (see ``domain.groupcommit``); returns the
        log position of the last one."""
        save = JobSave(job, job.collect_events(), receipt)
        with self._jobs.saving(job.id) as keep:
            position = self._commits.submit(save, deadline)
            keep(job)
        return position

    def _write_jobs(
        self, saves: Sequence[JobSave], deadline: float | None = None
    ) -> list[int | BaseException]:
        """Writes the saves in one transaction. If one lost a race (another process saved its
        job first), the transaction is void: each is written again on its own, so that only the
        loser's command runs again."""
        try:
            return list(self._write(saves, deadline))
        except IntegrityError:
            if len(saves) == 1:
                raise
        outcomes: list[int | BaseException] = []
        for save in saves:
            try:
                outcomes += self._write([save], deadline)
            except PersistenceError as error:
                outcomes.append(error)
        return outcomes

    def _write(self, saves: Sequence[JobSave], deadline: float | None) -> list[int]:
        """``Application.save`` for jobs, without its generic collection step, whose runtime
        ``Protocol`` checks alone cost a tenth of a command's CPU. The recorder stops waiting
        for the store's write lock at ``deadline``.

        It calls the library's private ``_record``, ``_take_snapshots`` and ``_notify`` steps in
        the order ``Application.save`` does (checked against eventsourcing 9.5.6; pyproject.toml
        pins 9.5.x): the library has no public way to save without its collection step, nor to
        pass arguments (``saved_kwargs``) to the recorder from ``save``.
        """
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for save in saves:
            processing.events.extend(save.events)
            processing.aggregates[save.job.id] = save.job
            if save.receipt is not None:
                processing.events.extend(save.receipt.collect_events())
                processing.aggregates[save.receipt.id] = save.receipt
        if deadline is not None:
            processing.saved_kwargs["deadline"] = deadline
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        last = {r.domain_event.originator_id: r.notification.id for r in recordings}
        return [
            max(last.get(save.job.id, 0), last[save.receipt.id] if save.receipt else 0)
            for save in saves
        ]

    def _deadline(self) -> float | None:
        """When a command arriving now must have stopped waiting for the store."""
        if self._write_timeout is None:
            return None
        return time.monotonic() + self._write_timeout

    def _acquire(self, job_id: UUID, deadline: float | None) -> threading.Lock:
        """Takes (and returns, for the caller to release) the lock that runs one job's commands
        one at a time in this process, waiting for it no later than ``deadline``: a command
        queued behind one that waits for a locked store gets its own timeout, not the other's
        plus its own."""
        lock = self._locks[job_id.int % self.lock_stripes]
        if deadline is None:
            lock.acquire()
        elif not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise LedgerUnavailableError(
                f"The event store is busy: job {job_id}'s earlier command still waits for it."
            )
        return lock


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _env_seconds(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise InvalidInputError(
            "retry backoff setting", f"must be decimal seconds, got {value!r}"
        ) from None
    if not parsed > 0:
        raise InvalidInputError("retry backoff setting", f"must be above 0, got {value!r}")
    return parsed


def _is_expected(version: int, expected: int | Collection[int]) -> bool:
    return version == expected if isinstance(expected, int) else version in expected


def _idempotent_id(actor: str, key: str) -> UUID:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidInputError(
            "idempotencyKey",
            f"must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY_CHARS} characters",
        )
    return uuid5(uuid5(IDEMPOTENCY_NAMESPACE, actor), key)
