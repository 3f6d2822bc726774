"""``api.policy``: who may see which job and whose email, who acts as a job's owner, page sizes.

Plain rules on domain objects, no store: the HTTP tests (``test_matrix``, ``test_lists``,
``test_audit``) check that every route applies them.
"""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from api.policy import (
    DRIVERS,
    list_query,
    may_act_as_owner,
    may_cancel,
    may_see,
    may_see_actor,
    page_size,
)
from domain.errors import InvalidInputError
from domain.job import Job, JobStatus
from domain.user import Role, User
from projections.query import JobQuery, SortOrder
from tests.api.conftest import make_settings

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
SETTINGS = make_settings("memory://", Path("unused"), max_page_size=20)


def _user(name: str, role: Role) -> User:
    return User.register(
        email=f"{name}@example.com", role=role, password_hash=HASH, actor="cli:root"
    )


ADMIN, WORKER = _user("admin", Role.ADMIN), _user("worker", Role.WORKER)
MEMBER, OTHER = _user("member", Role.MEMBER), _user("other", Role.MEMBER)
JOB = Job.create(job_id=uuid4(), job_type="import", data=None, total_items=None,
                 actor=str(MEMBER.id))


def test_workers_and_admins_see_every_job_members_only_their_own() -> None:
    assert [may_see(u, JOB) for u in (ADMIN, WORKER, MEMBER, OTHER)] == [True, True, True, False]


def test_only_the_creator_or_an_admin_acts_as_the_jobs_owner() -> None:
    assert [may_act_as_owner(u, JOB) for u in (ADMIN, WORKER, MEMBER, OTHER)] == [
        True, False, True, False,
    ]


def test_a_worker_cancels_only_by_naming_its_attempt() -> None:
    users = (ADMIN, WORKER, MEMBER, OTHER)
    assert [may_cancel(u, JOB, None) for u in users] == [True, False, True, False]
    assert [may_cancel(u, JOB, 1) for u in users] == [True, True, True, False]


def test_workers_and_admins_drive_jobs() -> None:
    assert [u.role in DRIVERS for u in (ADMIN, WORKER, MEMBER)] == [True, True, False]


def test_members_know_only_themselves_among_the_actors() -> None:
    actors = (str(ADMIN.id), str(MEMBER.id), "cli:root")
    assert [may_see_actor(ADMIN, a) for a in actors] == [True, True, True]
    assert [may_see_actor(WORKER, a) for a in actors] == [True, True, True]
    assert [may_see_actor(MEMBER, a) for a in actors] == [False, True, False]


def test_a_page_is_at_most_the_deployments_page_size() -> None:
    assert page_size(20, SETTINGS) == 20
    with pytest.raises(InvalidInputError, match="at most 20"):
        page_size(21, SETTINGS)


def _query(user: User, created_by: str | None = None, limit: int = 10) -> JobQuery | None:
    return list_query(
        user, SETTINGS, statuses=(JobStatus.PENDING,), job_type=None, created_by=created_by,
        sort=SortOrder.NEWEST_FIRST, limit=limit, offset=0, cursor=None,
    )


def test_members_list_only_their_own_jobs() -> None:
    own = _query(MEMBER)
    assert own is not None and own.created_by == str(MEMBER.id)
    assert _query(MEMBER, created_by=str(MEMBER.id)) == own
    assert _query(MEMBER, created_by=str(OTHER.id)) is None


def test_workers_and_admins_list_anyones_jobs() -> None:
    for user in (ADMIN, WORKER):
        every, others = _query(user), _query(user, created_by=str(OTHER.id))
        assert every is not None and every.created_by is None
        assert others is not None and others.created_by == str(OTHER.id)


def test_list_queries_keep_to_the_page_size() -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        _query(ADMIN, limit=21)
