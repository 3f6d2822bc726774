"""Reads without the store: the ledger's copies answer while they are as new as the view.

While this process's runner is the active one it reports every event before the view shows it,
so a copy it has not reported anything newer for holds every write a client was answered (a
command answers once the view shows it). Another process's writes, a disabled user above all,
must reach these copies before the view shows them; without an active runner nothing is answered
from memory. Several ledgers and views on one store stand for several API processes. A page of
the view is read on the event loop itself when the view is in this process (SQLite, memory).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from domain.job import JobStatus
from domain.ledger import JobLedger
from domain.user import Role, User
from projections import JobPage, JobQuery, JobSummaryView, ProjectionRunner
from projections.readmodel import ReadModel
from tests.domain.helpers import WORKER, job_in_status
from tests.eventually import eventually
from tests.projections.conftest import MakeRunner, MakeView

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
WAIT_SECONDS = 10.0

#: The stores several ledgers (processes) can share.
shared_stores = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def _admin_and_member(ledger: JobLedger) -> tuple[User, User]:
    admin = ledger.set_up_admin(email="admin@example.com", password_hash=HASH)
    member = ledger.register_user(
        email="ada@example.com", role=Role.MEMBER, password_hash=HASH, actor=str(admin.id)
    )
    return admin, member


def _active(runner: ProjectionRunner) -> ProjectionRunner:
    eventually(lambda: runner.active, what="the runner becoming active")
    return runner


def _shown(view: JobSummaryView[Any], position: int) -> None:
    """What an API process does before it answers a write: waits until the view shows it."""
    assert view.wait_for(position, WAIT_SECONDS)


def test_a_job_is_current_in_the_next_read_after_each_write(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    _active(runner)
    created = ledger.create_job(job_type="import", data={}, total_items=10, actor="ada")
    _shown(view, created.position)
    current = ledger.current_job(created.job.id)
    assert current is not None and current.version == 1

    started = ledger.start_job(created.job.id, actor=WORKER)
    _shown(view, started.position)
    current = ledger.current_job(created.job.id)
    assert current is not None
    assert (current.version, current.status) == (2, JobStatus.PROCESSING)


def test_nothing_is_current_without_an_active_runner(
    ledger: JobLedger, view: JobSummaryView[Any], make_runner: MakeRunner
) -> None:
    _, member = _admin_and_member(ledger)
    job_id = job_in_status(ledger, JobStatus.PROCESSING)
    ledger.get_user(member.id)
    assert ledger.current_job(job_id) is None
    assert ledger.current_user(member.id) is None

    runner = _active(make_runner())
    _shown(view, ledger.head())
    ledger.get_job(job_id)
    ledger.get_user(member.id)
    assert ledger.current_job(job_id) is not None
    assert ledger.current_user(member.id) is not None

    runner.stop()
    assert ledger.current_job(job_id) is None
    assert ledger.current_user(member.id) is None


def test_a_user_disabled_here_is_current_before_the_disable_answers(
    ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    _active(runner)
    admin, member = _admin_and_member(ledger)
    _shown(view, ledger.head())
    ledger.get_user(member.id)
    current = ledger.current_user(member.id)
    assert current is not None and current.disabled is False

    ledger.disable_user(member.id, actor=str(admin.id))
    current = ledger.current_user(member.id)
    assert current is not None and current.disabled is True


@shared_stores
def test_a_user_disabled_through_another_process_is_not_current_here_once_the_view_shows_it(
    backend: str,
    make_ledger: Callable[[], JobLedger],
    make_view: MakeView,
    make_runner: MakeRunner,
) -> None:
    here, there = make_ledger(), make_ledger()
    _active(make_runner(on=here))
    there_view = make_view()
    admin, member = _admin_and_member(there)
    _shown(there_view, there.head())
    here.get_user(member.id)
    assert here.current_user(member.id) is not None

    there.disable_user(member.id, actor=str(admin.id))
    _shown(there_view, there.head())
    current = here.current_user(member.id)
    assert current is None or current.disabled is True
    assert here.get_user(member.id).disabled is True


@shared_stores
def test_a_write_through_another_process_is_in_the_next_read_here(
    backend: str,
    make_ledger: Callable[[], JobLedger],
    make_view: MakeView,
    make_runner: MakeRunner,
) -> None:
    here, there = make_ledger(), make_ledger()
    view_here = make_view()
    _active(make_runner(on=here, into=view_here))
    there_view = make_view()
    created = here.create_job(job_type="import", data={}, total_items=10, actor="ada")
    _shown(view_here, created.position)
    assert here.current_job(created.job.id) is not None

    for command in (
        lambda: there.start_job(created.job.id, actor=WORKER),
        lambda: there.update_progress(created.job.id, 4, actor=WORKER),
    ):
        result = command()
        _shown(there_view, result.position)
        current = here.current_job(created.job.id)
        assert current is None or current.version == result.job.version
        assert here.get_job(created.job.id).version == result.job.version
        current = here.current_job(created.job.id)
        assert current is not None and current.version == result.job.version


def test_a_page_is_read_on_the_loop_only_when_the_view_stays_in_this_process(
    backend: str, ledger: JobLedger, view: JobSummaryView[Any], runner: ProjectionRunner
) -> None:
    created = ledger.create_job(job_type="import", data={}, total_items=10, actor="ada")
    _shown(view, created.position)
    read_model = ReadModel(view, runner)
    threads: list[int] = []
    query = view.query

    def recorded(page_query: JobQuery) -> JobPage:
        threads.append(threading.get_ident())
        return query(page_query)

    view.query = recorded  # type: ignore[method-assign]

    async def read() -> tuple[JobPage, int]:
        return await read_model.page(JobQuery()), threading.get_ident()

    try:
        page, loop_thread = asyncio.run(read())
    finally:
        read_model.close()
    assert [item.id for item in page.items] == [created.job.id]
    assert (threads == [loop_thread]) is (backend != "postgresql")
