"""Group commit: concurrent saves share transactions, and each caller gets its own outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.groupcommit import GroupCommit
from domain.job import Job
from domain.ledger import JobLedger, JobSave
from tests.conftest import on_backends
from tests.domain.helpers import ACTOR, WORKER, run_together
from tests.eventually import eventually


class Recorder:
    """A ``write_batch`` that remembers its batches and answers ``item * 10`` (or an error)."""

    def __init__(self, seconds: float = 0.0, fail: Callable[[int], bool] = lambda _: False):
        self.seconds = seconds
        self.fail = fail
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(
        self, items: Sequence[int], deadline: float | None = None
    ) -> list[int | BaseException]:
        with self.lock:
            self.batches.append(list(items))
        time.sleep(self.seconds)
        return [ValueError(f"item {i}") if self.fail(i) else i * 10 for i in items]


def test_a_lone_submission_is_written_at_once_on_its_own() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder)
    assert [commits.submit(1), commits.submit(2)] == [10, 20]
    assert recorder.batches == [[1], [2]]


def test_concurrent_submissions_share_batches_and_get_their_own_results() -> None:
    recorder = Recorder(seconds=0.05)
    results = run_together(20, GroupCommit(recorder).submit)
    assert results == [i * 10 for i in range(20)]
    assert sorted(i for batch in recorder.batches for i in batch) == list(range(20))
    assert len(recorder.batches) < 20


def test_batches_never_exceed_the_maximum() -> None:
    recorder = Recorder(seconds=0.05)
    run_together(12, GroupCommit(recorder, max_batch=3).submit)
    assert max(len(batch) for batch in recorder.batches) <= 3
    assert sum(len(batch) for batch in recorder.batches) == 12


def test_an_items_error_is_raised_to_its_submitter_only() -> None:
    recorder = Recorder(seconds=0.02, fail=lambda i: i % 2 == 1)
    results = run_together(10, GroupCommit(recorder).submit)
    for i, result in enumerate(results):
        if i % 2:
            assert isinstance(result, ValueError) and str(result) == f"item {i}"
        else:
            assert result == i * 10


def test_a_failed_batch_fails_each_of_its_submitters_and_the_next_batch_runs() -> None:
    calls = {"n": 0}

    def flaky(items: Sequence[int], deadline: float | None) -> list[int | BaseException]:
        calls["n"] += 1
        time.sleep(0.02)
        if calls["n"] == 1:
            raise ConnectionError("store down")
        return [i * 10 for i in items]

    commits = GroupCommit(flaky)
    results = run_together(8, commits.submit)
    failed = [r for r in results if isinstance(r, ConnectionError)]
    assert failed and all(str(error) == "store down" for error in failed)
    assert len({id(error) for error in failed}) == len(failed)
    assert all(r == i * 10 for i, r in enumerate(results) if not isinstance(r, Exception))
    assert commits.submit(100) == 1000


def _pending_command(ledger: JobLedger, job: Job) -> JobSave:
    job.update_progress(job.processed_items + 1, actor=WORKER)
    return JobSave(job, job.collect_events())


@on_backends("sqlite", "postgresql")
def test_a_batch_with_a_lost_race_saves_the_others_once(
    make_ledger: Callable[[], JobLedger],
) -> None:
    """Two ledgers on one store (the in-memory store cannot be shared)."""
    here, there = make_ledger(), make_ledger()
    jobs = []
    for _ in range(3):
        job_id = here.create_job(job_type="t", total_items=10, actor=ACTOR).job.id
        here.start_job(job_id, actor=WORKER)
        jobs.append(here.get_job(job_id))
    there.update_progress(jobs[1].id, 5, actor=WORKER)

    outcomes = here._write_jobs([_pending_command(here, job) for job in jobs])

    assert isinstance(outcomes[1], IntegrityError)
    assert all(isinstance(outcomes[i], int) for i in (0, 2))
    for i in (0, 2):
        history = here.history(jobs[i].id)
        assert [e.type for e in history] == ["Created", "Started", "ProgressUpdated"]
    assert here.get_job(jobs[1].id).processed_items == 5


def test_concurrent_commands_on_many_jobs_all_land_at_their_positions(ledger: JobLedger) -> None:
    job_ids = [
        ledger.create_job(job_type="t", total_items=100, actor=ACTOR).job.id for _ in range(8)
    ]
    for job_id in job_ids:
        ledger.start_job(job_id, actor=WORKER)
    results: list[Any] = [None] * 32
    barrier = threading.Barrier(32)

    def work(i: int) -> None:
        barrier.wait()
        job_id = job_ids[i % 8]
        results[i] = ledger.log_error(job_id, f"e{i}", actor=WORKER)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    positions = [result.position for result in results]
    assert len(set(positions)) == 32
    by_position = {n.id: n for n in ledger.recorder.select_notifications(1, 1_000)}
    for result in results:
        notification = by_position[result.position]
        assert notification.originator_id == result.job.id
        assert notification.originator_version == result.job.version
    for job_id in job_ids:
        assert ledger.get_job(job_id).error_count == 4


class LockedStore:
    """A ``write_batch`` for a store that someone else keeps locked until ``release()``: a batch
    waits for it until its deadline, then every item times out (``TimeoutError``)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.batches: list[list[int]] = []

    def release(self) -> None:
        self.released.set()

    def __call__(self, items: Sequence[int], deadline: float | None) -> list[int | BaseException]:
        self.batches.append(list(items))
        assert deadline is not None
        if self.released.wait(max(0.0, deadline - time.monotonic())):
            return [i * 10 for i in items]
        return [TimeoutError(f"item {i}") for i in items]


def _submit_staggered(
    commits: GroupCommit[int, int], count: int, gap: float, timeout: float
) -> list[tuple[float, Any]]:
    """Submits ``count`` items ``gap`` seconds apart, each with ``timeout`` from its arrival;
    returns each one's (seconds waited, result or error)."""
    outcomes: list[tuple[float, Any]] = [(0.0, None)] * count

    def submit(i: int) -> None:
        arrived = time.monotonic()
        try:
            outcome: Any = commits.submit(i, arrived + timeout)
        except TimeoutError as error:
            outcome = error
        outcomes[i] = (time.monotonic() - arrived, outcome)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
        time.sleep(gap)
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a submitter hung"
    return outcomes


def test_each_submitter_waits_for_a_locked_store_its_own_timeout_once() -> None:
    """Queued behind a batch that waits for the store, an item still times out at its own
    deadline: it is not given a whole timeout again after the batches before it."""
    timeout = 1.0
    store = LockedStore()
    outcomes = _submit_staggered(
        GroupCommit(store, is_timeout=lambda e: isinstance(e, TimeoutError)), 4, 0.3, timeout
    )
    for i, (waited, outcome) in enumerate(outcomes):
        assert isinstance(outcome, TimeoutError), (i, outcome)
        assert timeout - 0.05 <= waited < timeout + 0.5, (i, waited)


def test_an_item_whose_time_is_not_up_is_written_once_the_store_is_free() -> None:
    """Items 1 and 2 share a batch that times out at item 1's deadline; the store is free
    before item 2's, which is written then."""
    timeout, gap = 1.5, 0.6
    store = LockedStore()
    commits = GroupCommit(store, is_timeout=lambda e: isinstance(e, TimeoutError))
    release = threading.Timer(2 * gap + timeout - 0.3, store.release)
    release.start()
    outcomes = _submit_staggered(commits, 3, gap, timeout)
    release.join()
    assert [type(outcome) for _, outcome in outcomes] == [TimeoutError, TimeoutError, int]
    assert outcomes[2][1] == 20
    assert sum(batch.count(2) for batch in store.batches) >= 2, store.batches


def test_an_error_that_is_not_a_timeout_is_answered_at_once_though_time_is_left() -> None:
    calls: list[Sequence[int]] = []

    def broken(items: Sequence[int], deadline: float | None) -> list[int | BaseException]:
        calls.append(items)
        return [ValueError("bad") for _ in items]

    commits = GroupCommit(broken, is_timeout=lambda e: isinstance(e, TimeoutError))
    with pytest.raises(ValueError, match="bad"):
        commits.submit(1, time.monotonic() + 60)
    assert calls == [[1]]


def test_in_flight_counts_the_submissions_not_yet_answered() -> None:
    store = LockedStore()
    commits = GroupCommit(store, is_timeout=lambda e: isinstance(e, TimeoutError))
    threads = [
        threading.Thread(target=commits.submit, args=(i, time.monotonic() + 30)) for i in range(3)
    ]
    for thread in threads:
        thread.start()
    eventually(lambda: commits.in_flight == 3, what="three submissions in flight")
    store.release()
    for thread in threads:
        thread.join(timeout=30)
    assert commits.in_flight == 0
