"""The live reader, on every backend: job events after a position, in log order, each with the
job's row right after it, folded forward or read from the store alike."""

from __future__ import annotations

from domain.ledger import JobLedger
from projections.live import EVENT_NAMES, LiveReader
from projections.summary import JobSummary

WORKER = "worker-1"


def test_every_job_event_after_a_position_comes_with_the_job_as_of_it(
    module_ledger: JobLedger,
) -> None:
    ledger = module_ledger
    after = ledger.head()
    job = ledger.create_job(job_type="live", actor="alice", total_items=3).job
    ledger.register_user(
        email=f"live-{job.id}@example.com", password_hash="$argon2id$fake", role="member",
        actor="cli:test",
    )  # fmt: skip
    ledger.start_job(job.id, actor=WORKER)
    ledger.update_progress(job.id, processed_items=2, actor=WORKER)
    ledger.complete_job(job.id, result={"rows": 3}, actor=WORKER)
    events, reached = LiveReader(ledger).read(after)
    assert reached == ledger.head()
    assert [event.name for event in events] == [
        "job.created", "job.started", "job.progress", "job.completed",
    ]  # fmt: skip
    positions = [event.position for event in events]
    assert positions == sorted(positions) and positions[0] > after
    for event in events:
        past = ledger.job_as_of(job.id, version=event.entry.version)
        assert event.job == JobSummary.of(past)
    assert events[2].entry.data["processed_items"] == 2


def test_a_read_from_the_middle_of_a_jobs_life_reads_its_state_from_the_store(
    module_ledger: JobLedger,
) -> None:
    ledger = module_ledger
    job = ledger.create_job(job_type="live", actor="alice", total_items=5).job
    ledger.start_job(job.id, actor=WORKER)
    middle = ledger.head()
    ledger.update_progress(job.id, processed_items=4, actor=WORKER)
    events, _ = LiveReader(ledger).read(middle)
    assert [(event.name, event.job.processed_items, event.job.version) for event in events] == [
        ("job.progress", 4, 3)
    ]
    assert ledger.get_job(job.id).processed_items == 4, "the ledger's own job is untouched"


def test_reads_stop_at_upto_and_at_the_limit(module_ledger: JobLedger) -> None:
    ledger = module_ledger
    after = ledger.head()
    for _ in range(5):
        ledger.create_job(job_type="live", actor="alice")
    reader = LiveReader(ledger)
    first, reached = reader.read(after, limit=2)
    assert len(first) == 2 and reached == first[-1].position
    rest, end = reader.read(reached, upto=reached + 2)
    assert [event.position for event in rest] == [reached + 1, reached + 2] and end == reached + 2


def test_every_event_of_the_job_has_a_stream_name() -> None:
    from domain.job import Job

    events = {name for name, value in vars(Job).items() if isinstance(value, type)
              and issubclass(value, Job.Event) and value is not Job.Event}  # fmt: skip
    assert events - {"Snapshot"} <= set(EVENT_NAMES)
