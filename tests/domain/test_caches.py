"""The ledger's caches of users and jobs: fast, and never stale where it matters.

Users are read on every request, so each ledger keeps them and catches up with the store on each
read: a change made through another ledger (another API process) is seen at once. A job's cached
copy answers who may see it without a store read (its creator never changes). The in-memory store
cannot be shared between ledgers, so the cross-process cases run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.errors import LoginThrottledError, UserNotFoundError
from domain.job import JobStatus
from domain.ledger import JobLedger
from domain.user import MAX_FAILED_LOGINS, Role, User, user_id_for
from tests.domain.helpers import ACTOR, job_in_status

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
ADMIN = "admin@example.com"


#: The stores several ledgers (processes) can share.
shared_stores = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def _two_ledgers(backend: str, make_ledger: Callable[[], JobLedger]) -> tuple[JobLedger, JobLedger]:
    assert backend != "memory"
    return make_ledger(), make_ledger()


def _admin_and_member(ledger: JobLedger) -> tuple[User, User]:
    admin = ledger.set_up_admin(email=ADMIN, password_hash=HASH)
    member = ledger.register_user(
        email="ada@example.com", role=Role.MEMBER, password_hash=HASH, actor=str(admin.id)
    )
    return admin, member


@shared_stores
def test_a_user_disabled_through_another_ledger_is_disabled_here_at_once(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    here, there = _two_ledgers(backend, make_ledger)
    admin, member = _admin_and_member(there)
    assert here.get_user(member.id).disabled is False

    there.disable_user(member.id, actor=str(admin.id))
    assert here.get_user(member.id).disabled is True

    there.enable_user(member.id, actor=str(admin.id))
    assert here.get_user(member.id).disabled is False


@shared_stores
def test_a_role_changed_through_another_ledger_is_seen_here_at_once(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    here, there = _two_ledgers(backend, make_ledger)
    admin, member = _admin_and_member(here)
    assert here.get_user(member.id).role is Role.MEMBER

    there.change_role(member.id, Role.WORKER, actor=str(admin.id))
    user = here.get_user(member.id)
    assert (user.role, user.version) == (Role.WORKER, 2)


@shared_stores
def test_failed_logins_from_both_ledgers_count_towards_one_lock(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    here, there = _two_ledgers(backend, make_ledger)
    _, member = _admin_and_member(here)
    for attempt in range(MAX_FAILED_LOGINS):
        (here if attempt % 2 else there).record_failed_login(member.id)

    with pytest.raises(LoginThrottledError):
        here.get_user(member.id).check_login_allowed()
    with pytest.raises(LoginThrottledError):
        here.record_failed_login(member.id)
    assert len(list(there.events.get(member.id))) == 1 + MAX_FAILED_LOGINS


@shared_stores
def test_a_user_registered_through_another_ledger_is_found_here(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    here, there = _two_ledgers(backend, make_ledger)
    with pytest.raises(UserNotFoundError):
        here.find_user(ADMIN)
    there.set_up_admin(email=ADMIN, password_hash=HASH)
    assert here.find_user(ADMIN).id == user_id_for(ADMIN)


def test_changing_a_user_that_was_handed_out_leaves_the_ledger_unchanged(
    make_ledger: Callable[[], JobLedger],
) -> None:
    ledger = make_ledger()
    admin, member = _admin_and_member(ledger)
    handed_out = ledger.get_user(member.id)
    handed_out.disable(actor=str(admin.id))

    assert handed_out.disabled is True
    assert ledger.get_user(member.id).disabled is False
    assert ledger.get_user(member.id).version == 1


@shared_stores
def test_known_job_is_the_job_this_ledger_saw_without_reading_the_store(
    backend: str, make_ledger: Callable[[], JobLedger]
) -> None:
    here, there = _two_ledgers(backend, make_ledger)
    job_id = job_in_status(there, JobStatus.PENDING)
    assert here.known_job(job_id) is None

    assert here.get_job(job_id).created_by == ACTOR
    there.start_job(job_id, actor="w")
    known = here.known_job(job_id)
    assert known is not None
    assert (known.created_by, known.status) == (ACTOR, JobStatus.PENDING)
    assert here.get_job(job_id).status is JobStatus.PROCESSING


def test_a_copy_read_while_a_newer_event_is_shown_is_not_current(
    make_ledger: Callable[[], JobLedger],
) -> None:
    ledger = make_ledger()
    job_id = job_in_status(ledger, JobStatus.PENDING)
    ledger.view_reported()
    real_get = ledger.events.get

    def get_while_the_view_shows_version_2(*args: Any, **kwargs: Any) -> Any:
        ledger.view_shows([(0, job_id.int, 2, "", b"")])
        return real_get(*args, **kwargs)

    ledger.events.get = get_while_the_view_shows_version_2  # type: ignore[method-assign]
    assert ledger.get_job(job_id).version == 1
    assert ledger.current_job(job_id) is None

    ledger.events.get = real_get  # type: ignore[method-assign]
    assert ledger.get_job(job_id).version == 1
    current = ledger.current_job(job_id)
    assert current is not None and current.version == 1

    ledger.view_shows([(0, job_id.int, 2, "", b"")])
    assert ledger.current_job(job_id) is None


def test_a_known_job_handed_out_is_a_copy(make_ledger: Callable[[], JobLedger]) -> None:
    ledger = make_ledger()
    job_id = job_in_status(ledger, JobStatus.PROCESSING)
    known = ledger.known_job(job_id)
    assert known is not None
    known.update_progress(5, actor="w")

    assert ledger.get_job(job_id).processed_items == 0
    assert ledger.update_progress(job_id, 3, actor="w").job.version == 3
