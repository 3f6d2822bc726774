"""Verify: fold every job from the event store and compare it with its ``job_summary`` row.

Consistent while writes continue: the log is read up to the head taken at the start (the caller
first lets the view reach that head), and each row is compared with its job folded *at the row's
own version*. So a row that moved on meanwhile is still compared like for like, while a row
behind the head, a missing row, a row without a job, or a wrong field is a difference. The kept
counts are compared with counts of the rows read in the same snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.errors import JobNotFoundError
from domain.ledger import JobLedger
from projections.log import log_reader
from projections.projection import JobSummaryProjection
from projections.summary import JobSummary
from projections.view import JobSummaryView

READ_SIZE = 2_000


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What verify compared, and every difference it found."""

    head: int
    jobs: int
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def verify(
    ledger: JobLedger,
    view: JobSummaryView[Any],
    head: int | None = None,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Compares every row with its job folded by the domain, up to ``head`` (default: now)."""
    head = ledger.head() if head is None else head
    versions = _versions_at(ledger, head)
    differences: list[str] = []
    checked = 0
    for row in view.rows():
        checked += 1
        expected = versions.pop(row.id.int, None)
        if expected is not None and row.version < expected:
            differences.append(f"{row.id}: row at version {row.version}, the log has {expected}")
            continue
        try:
            job = ledger.get_job(row.id, version=row.version)
        except JobNotFoundError:
            differences.append(f"{row.id}: row for a job the event store does not hold")
            continue
        differences += [
            f"{row.id}: {name} is {have!r} in the row, {want!r} in the job"
            for name, have, want in row.differences(JobSummary.of(job))
        ]
        if on_progress is not None:
            on_progress(checked)
    differences += [
        f"{UUID(int=key)}: no row (the job is at version {version})"
        for key, version in versions.items()
    ]
    kept, actual = view.recount()
    if kept != actual:
        differences.append(f"counts: kept {kept}, the rows give {actual}")
    return VerifyReport(head, checked, differences)


def _versions_at(ledger: JobLedger, head: int) -> dict[int, int]:
    """Each job's version at ``head`` (by ``UUID.int``), from one pass over the log."""
    topics = JobSummaryProjection.topics
    read_log = log_reader(ledger.recorder)
    versions: dict[int, int] = {}
    position = 0
    while position < head and (batch := read_log(position, READ_SIZE)):
        for position, key, version, topic, _ in batch:
            if position > head:
                break
            if topic in topics:
                versions[key] = version
        position = batch[-1][0]
    return versions
