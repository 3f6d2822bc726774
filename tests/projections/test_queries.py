"""List queries on every backend: filters, sort, offset and cursor pages, counts, bad input.

Bad input raises InvalidInputError naming the parameter (the API answers 422); cursors are
signed, bound to their query, and a cursor walk while jobs are being inserted sees every job that
existed before the walk exactly once.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.errors import InvalidInputError, PageNotFoundError
from domain.job import JobStatus
from domain.ledger import JobLedger
from projections import JobQuery, JobSummaryView, ProjectionRunner, SortOrder
from projections.query import MAX_LIMIT
from tests.projections.helpers import ACTORS, TYPES, brute_force, folded, walk


@pytest.fixture
def jobs(ledger: JobLedger, runner: ProjectionRunner) -> list[Any]:
    """36 jobs of 3 types by 3 owners in every status, projected."""
    job_ids = []
    for n in range(36):
        result = ledger.create_job(job_type=TYPES[n % 3], total_items=10, actor=ACTORS[n // 3 % 3])
        job_id = result.job.id
        job_ids.append(job_id)
        match n % 6:
            case 1:
                ledger.start_job(job_id, actor="w")
            case 2:
                ledger.start_job(job_id, actor="w")
                ledger.complete_job(job_id, actor="w")
            case 3:
                ledger.fail_job(job_id, "x", actor="w")
            case 4:
                ledger.cancel_job(job_id, actor=ACTORS[n // 3 % 3])
            case 5:
                ledger.start_job(job_id, actor="w")
                ledger.fail_job(job_id, "flaky", actor="w")
    assert runner.wait_for(ledger.head(), timeout=5.0)
    return list(folded(ledger, job_ids).values())


QUERIES = [
    JobQuery(),
    JobQuery(sort=SortOrder.OLDEST_FIRST, limit=7),
    JobQuery(statuses=(JobStatus.PENDING,), limit=4),
    JobQuery(statuses=("completed", "failed"), sort="createdAt", limit=3),
    JobQuery(job_type="export", limit=5),
    JobQuery(job_type="import", statuses=("processing", "cancelled"), limit=1),
    JobQuery(created_by="bob", limit=2),
    JobQuery(created_by="carol", job_type="geocode", sort="createdAt", limit=2),
    JobQuery(created_by="alice", statuses=("pending",), limit=100),
    JobQuery(job_type="nothing-of-this-type"),
    JobQuery(statuses=(JobStatus.RETRYING,), limit=4),
    JobQuery(statuses=("retrying", "pending"), job_type="import", sort="createdAt", limit=2),
    JobQuery(created_by="bob", statuses=("retrying",), limit=1),
]


def test_pages_equal_a_brute_force_filter_and_sort(
    view: JobSummaryView[Any], jobs: list[Any]
) -> None:
    for query in QUERIES:
        expected = brute_force(jobs, query)

        assert walk(view, query) == expected, query
        for offset in (0, 1, 5, 29, 40):
            page = view.query(replace(query, offset=offset))
            assert page.items == expected[offset : offset + query.limit], (query, offset)
            assert page.offset == offset
            assert page.limit == query.limit
            assert (page.next_cursor is not None) == (len(expected) > offset + query.limit)


def test_time_range_filters(view: JobSummaryView[Any], jobs: list[Any]) -> None:
    times = sorted(job.created_at for job in jobs)
    since, before = times[5], times[20]
    query = JobQuery(created_since=since, created_before=before, limit=4)

    assert walk(view, query) == brute_force(jobs, query)
    assert len(walk(view, query)) == 15
    later = before + timedelta(days=1)
    assert view.query(JobQuery(created_since=later)).items == []


def test_counts_are_kept_per_status_and_type(view: JobSummaryView[Any], jobs: list[Any]) -> None:
    counts = view.counts()

    assert counts.by_status == dict.fromkeys(
        ("pending", "processing", "retrying", "completed", "failed", "cancelled"), 6
    )
    assert counts.by_type == {"export": 12, "geocode": 12, "import": 12}
    assert counts.total == 36


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"statuses": ("pending", "done")}, "status"),
        ({"sort": "updatedAt"}, "sort"),
        ({"sort": "-createdat"}, "sort"),
        ({"job_type": ""}, "type"),
        ({"job_type": "x" * 101}, "type"),
        ({"created_by": 7}, "createdBy"),
        ({"created_since": datetime(2026, 1, 1)}, "createdSince"),
        ({"cursor": "abc", "offset": 1}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "x" * 600}, "cursor"),
    ],
)
def test_bad_query_input_is_refused(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        JobQuery(**arguments)
    assert raised.value.field == field


def test_malformed_tampered_and_foreign_cursors_are_refused(
    view: JobSummaryView[Any], jobs: list[Any]
) -> None:
    query = JobQuery(statuses=("pending", "failed"), limit=2)
    cursor = view.query(query).next_cursor
    assert cursor is not None
    payload, mac = cursor.split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = base64.urlsafe_b64encode(decoded.replace(b'"t":', b'"t":1')).rstrip(b"=").decode()
    flipped_mac = mac[:-1] + ("A" if mac[-1] != "A" else "B")

    for malformed in ("not-a-cursor", "a.b.c", f"{payload}!.{mac}", f"{payload}.{mac}==",
                      f"{payload}é.{mac}"):
        with pytest.raises(InvalidInputError, match="malformed") as raised:
            view.query(replace(query, cursor=malformed))
        assert raised.value.field == "cursor"
    for tampered in (f"{forged}.{mac}", f"{payload}.{flipped_mac}", "abc.def"):
        with pytest.raises(PageNotFoundError, match="names no page"):
            view.query(replace(query, cursor=tampered))
    for other in (replace(query, statuses=("pending",)), replace(query, sort="createdAt")):
        with pytest.raises(PageNotFoundError, match="continues another one"):
            view.query(replace(other, cursor=cursor))
    assert view.query(replace(query, cursor=cursor, limit=3)).items  # the limit may change


def test_an_offset_with_a_cursor_skips_that_many_rows_after_it(
    view: JobSummaryView[Any], jobs: list[Any]
) -> None:
    query = JobQuery(limit=1)
    cursor = view.query(query).next_cursor
    after = view.query(replace(query, cursor=cursor, limit=MAX_LIMIT)).items

    skipped = view.query(replace(query, cursor=cursor, offset=2, limit=2)).items

    assert [row.id for row in skipped] == [row.id for row in after[2:4]]


def test_a_cursor_walk_while_jobs_are_inserted_sees_each_existing_job_once(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner, jobs: list[Any]
) -> None:
    """Two jobs arrive between pages (fewer than a page, so an ascending walk still ends)."""
    existing = {job.id for job in jobs}
    inserted: list[Any] = []

    def insert_two() -> None:
        for _ in range(2):
            inserted.append(ledger.create_job(job_type="import", actor="alice").job.id)
        assert runner.wait_for(ledger.head(), timeout=5.0)

    for sort in SortOrder:
        query = JobQuery(sort=sort, limit=3)
        insert_two()
        page = view.query(query)
        seen = [row.id for row in page.items]
        while page.next_cursor is not None:
            insert_two()
            page = view.query(replace(query, cursor=page.next_cursor))
            seen += [row.id for row in page.items]
        assert len(seen) == len(set(seen)), "a row appeared twice"
        assert existing <= set(seen), "a row that existed before the walk was skipped"
    assert len(inserted) >= 20, "jobs were inserted between the pages of the walk"
