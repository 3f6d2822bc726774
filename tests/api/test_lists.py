"""Listing jobs: filters, sort, pages by offset and cursor, members' own jobs, read-your-writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import orjson
import pytest

from api.responses import job_list_response
from api.schemas.jobs import JobList, JobSummaryOut
from domain.job import JobStatus
from projections.query import JobPage
from projections.summary import JobSummary
from tests.api.client import AppClient
from tests.api.conftest import People, assert_problem, create_job
from tests.conftest import MEMORY_ONLY

JOBS = "/api/v1/jobs"


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_a_change_shows_in_the_next_list(client: AppClient, people: People) -> None:
    headers = people.admin.headers
    for _ in range(3):
        job = create_job(client, people.member, totalItems=2)
        assert ids(client.get(JOBS, headers=headers))[0] == job["id"]
        client.post(f"{JOBS}/{job['id']}/start", headers=people.worker.headers)
        listed = client.get(JOBS, params={"status": "processing"}, headers=headers).json()
        assert job["id"] in [item["id"] for item in listed["items"]]


def test_filters_sort_and_pages(client: AppClient, people: People) -> None:
    made = [
        create_job(client, owner, type=kind)["id"]
        for owner, kind in [(people.member, "import"), (people.other, "export"),
                            (people.member, "export"), (people.worker, "import")]
    ]
    client.post(f"{JOBS}/{made[1]}/start", headers=people.worker.headers)
    client.delete(f"{JOBS}/{made[2]}", headers=people.member.headers)
    admin = people.admin.headers

    newest_first = client.get(JOBS, headers=admin)
    assert ids(newest_first) == made[::-1]
    item = newest_first.json()["items"][0]
    assert set(item) == {"id", "type", "status", "createdBy", "totalItems", "processedItems",
                         "progress", "errorCount", "lastError", "createdAt", "startedAt",
                         "completedAt", "updatedAt", "version", "priority", "runAt", "attempt",
                         "maxAttempts", "leaseExpiresAt", "cancelRequested"}
    assert ids(client.get(JOBS, params={"sort": "createdAt"}, headers=admin)) == made
    assert ids(client.get(JOBS, params={"type": "export"}, headers=admin)) == [made[2], made[1]]
    statuses = [("status", "processing"), ("status", "cancelled")]
    both = client.get(JOBS, params=statuses, headers=admin)
    assert ids(both) == [made[2], made[1]]
    mine = client.get(JOBS, params={"createdBy": people.member.id}, headers=admin)
    assert ids(mine) == [made[2], made[0]]
    page = client.get(JOBS, params={"limit": 2, "offset": 1}, headers=admin).json()
    assert [i["id"] for i in page["items"]] == [made[2], made[1]]
    assert (page["limit"], page["offset"]) == (2, 1)

    first = client.get(JOBS, params={"limit": 3}, headers=admin).json()
    assert first["nextCursor"]
    create_job(client, people.member)
    rest = client.get(JOBS, params={"limit": 3, "cursor": first["nextCursor"]}, headers=admin)
    assert ids(rest) == [made[0]] and rest.json()["nextCursor"] is None


def test_members_list_only_their_own_jobs(client: AppClient, people: People) -> None:
    own = create_job(client, people.member)["id"]
    create_job(client, people.other)

    assert ids(client.get(JOBS, headers=people.member.headers)) == [own]
    foreign = client.get(JOBS, params={"createdBy": people.other.id}, headers=people.member.headers)
    assert ids(foreign) == []
    assert len(ids(client.get(JOBS, headers=people.worker.headers))) == 2


@MEMORY_ONLY
@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"offset": -1}, {"status": "done"},
        {"sort": "-updatedAt"}, {"cursor": "not-a-cursor"}, {"cursor": "abc.def.ghi"},
        {"cursor": "a." + "b" * 511},
    ],
)
def test_bad_list_parameters_are_422(
    client: AppClient, people: People, params: dict[str, Any]
) -> None:
    assert_problem(client.get(JOBS, params=params, headers=people.admin.headers), 422)


@MEMORY_ONLY
def test_a_tampered_or_foreign_cursor_names_no_page(client: AppClient, people: People) -> None:
    for _ in range(3):
        create_job(client, people.member)
    first = client.get(JOBS, params={"limit": 1}, headers=people.admin.headers).json()
    cursor = first["nextCursor"]
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")

    for params in ({"limit": 1, "cursor": tampered},
                   {"limit": 1, "cursor": cursor, "sort": "createdAt"},
                   {"limit": 1, "cursor": cursor, "type": "export"},
                   {"limit": 1, "cursor": "abc.def"}):
        assert_problem(client.get(JOBS, params=params, headers=people.admin.headers), 404)


@MEMORY_ONLY
def test_an_offset_with_a_cursor_skips_rows_after_it(client: AppClient, people: People) -> None:
    made = [create_job(client, people.member)["id"] for _ in range(5)]
    headers = people.admin.headers
    first = client.get(JOBS, params={"limit": 1}, headers=headers).json()

    skipped = client.get(JOBS, params={"limit": 2, "cursor": first["nextCursor"], "offset": 2},
                         headers=headers)

    assert skipped.status_code == 200, skipped.text
    assert ids(skipped) == made[::-1][3:5]


SUMMARIES = [
    JobSummary(
        id=uuid4(), job_type="import", status=JobStatus.PENDING, created_by="cli:ops",
        total_items=None, processed_items=0, progress=0, error_count=0, last_error=None,
        created_at=datetime(2026, 3, 1, 14, 2, 7, tzinfo=UTC), started_at=None,
        completed_at=None, updated_at=datetime(2026, 3, 1, 14, 2, 7, tzinfo=UTC), version=1,
        priority=0, run_at=datetime(2026, 3, 1, 14, 2, 7, tzinfo=UTC), attempt=0, max_attempts=3,
        lease_expires_at=None, cancel_requested=False,
    ),
    JobSummary(
        id=uuid4(), job_type="géocodage \"x\"", status=JobStatus.FAILED, created_by=str(uuid4()),
        total_items=10, processed_items=7, progress=70, error_count=3, last_error="ça a échoué",
        created_at=datetime(2026, 3, 1, 15, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        started_at=datetime(2026, 3, 1, 13, 0, 1, 5, tzinfo=UTC),
        completed_at=datetime(2026, 3, 1, 13, 9, tzinfo=UTC),
        updated_at=datetime(2026, 3, 1, 13, 9, tzinfo=UTC), version=12,
        priority=-100,
        run_at=datetime(2026, 3, 1, 16, 0, 0, 7, tzinfo=timezone(timedelta(hours=2))),
        attempt=2, max_attempts=100,
        lease_expires_at=datetime(2026, 3, 1, 13, 8, 30, 999999, tzinfo=UTC), cancel_requested=True,
    ),
]


def test_a_list_body_is_what_its_schema_serialises() -> None:
    page = JobPage(items=SUMMARIES, limit=20, offset=0, next_cursor="abc")
    model = JobList(
        items=[JobSummaryOut.model_validate(row, from_attributes=True) for row in SUMMARIES],
        limit=20, offset=0, next_cursor="abc",
    )
    response = job_list_response(page)
    assert response.media_type == "application/json"
    assert orjson.loads(response.body) == model.model_dump(mode="json")
