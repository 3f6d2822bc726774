"""The job's rules (DESIGN section 2), and the user update use case, through the ledger, on
every store."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    JobNotFoundError,
    ProgressConflictError,
    UserConflictError,
    UserNotFoundError,
    VersionMismatchError,
)
from domain.job import MAX_DETAILS_BYTES, MAX_ERROR_LOG, MAX_MESSAGE_CHARS, Job, JobStatus
from domain.ledger import JobLedger
from domain.user import Role, User
from tests.domain.helpers import ACTOR, WORKER, job_in_status, stored_event_count


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_created_job_is_pending_and_owned_by_its_actor(ledger: JobLedger) -> None:
    result = ledger.create_job(
        job_type="geocode", data={"rows": [1, 2]}, total_items=4, actor=ACTOR
    )
    job = ledger.get_job(result.job.id)
    assert (job.status, job.created_by, job.job_type) == (JobStatus.PENDING, ACTOR, "geocode")
    assert job.data == {"rows": [1, 2]}
    assert (job.total_items, job.processed_items, job.progress, job.version) == (4, 0, 0, 1)
    assert job.created_at == job.updated_at
    assert result.position == ledger.head()


@pytest.mark.parametrize(
    ("total", "processed", "percent"),
    [(3, 1, 33), (3, 2, 66), (200, 199, 99), (100, 100, 99), (7, 0, 0), (None, 50, 0)],
)
def test_progress_is_floored_and_capped_until_completed(
    ledger: JobLedger, total: int | None, processed: int, percent: int
) -> None:
    job_id = job_in_status(ledger, JobStatus.PROCESSING, total_items=total)
    assert ledger.update_progress(job_id, processed, actor=WORKER).job.progress == percent
    assert ledger.complete_job(job_id, actor=WORKER).job.progress == 100


def test_progress_never_goes_down_nor_beyond_the_total(ledger: JobLedger) -> None:
    job_id = job_in_status(ledger, JobStatus.PROCESSING, total_items=10)
    ledger.update_progress(job_id, 6, actor=WORKER)
    before = stored_event_count(ledger, job_id)
    with pytest.raises(ProgressConflictError, match="cannot go down"):
        ledger.update_progress(job_id, 5, actor=WORKER)
    with pytest.raises(ProgressConflictError, match="cannot exceed"):
        ledger.update_progress(job_id, 11, actor=WORKER)
    with pytest.raises(ProgressConflictError, match="cannot exceed"):
        ledger.update_progress(job_id, 7, total_items=6, actor=WORKER)
    assert stored_event_count(ledger, job_id) == before
    job = ledger.update_progress(job_id, 6, total_items=20, actor=WORKER).job
    assert (job.processed_items, job.total_items, job.progress) == (6, 20, 30)


@pytest.mark.parametrize(
    ("processed", "total", "field"),
    [
        (-1, None, "processedItems"),
        (1, 0, "totalItems"),
        (True, None, "processedItems"),
        ("3", None, "processedItems"),
        (1.5, None, "processedItems"),
        (2**53, None, "processedItems"),
    ],
)
def test_malformed_progress_is_invalid_input(
    ledger: JobLedger, processed: object, total: object, field: str
) -> None:
    job_id = job_in_status(ledger, JobStatus.PROCESSING)
    with pytest.raises(InvalidInputError) as raised:
        ledger.update_progress(job_id, processed, total, actor=WORKER)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_invalid_input_is_reported_before_the_state_conflict(ledger: JobLedger) -> None:
    job_id = job_in_status(ledger, JobStatus.COMPLETED)
    with pytest.raises(InvalidInputError):
        ledger.update_progress(job_id, -5, actor=WORKER)


def test_error_log_keeps_the_newest_hundred_and_counts_all(ledger: JobLedger) -> None:
    job_id = job_in_status(ledger, JobStatus.PROCESSING)
    for n in range(MAX_ERROR_LOG + 30):
        ledger.log_error(job_id, f"row {n} is bad", item=f"row-{n}", details={"n": n}, actor=WORKER)
    job = ledger.get_job(job_id)
    assert job.error_count == MAX_ERROR_LOG + 30
    assert [e.item for e in job.error_log] == [f"row-{n}" for n in range(30, MAX_ERROR_LOG + 30)]
    assert job.error_log[-1].details == {"n": MAX_ERROR_LOG + 29}
    logged = [e for e in ledger.events.get(job_id) if isinstance(e, Job.ErrorLogged)]
    assert len(logged) == MAX_ERROR_LOG + 30


def test_cancel_keeps_the_error_log_and_is_not_a_failure(ledger: JobLedger) -> None:
    job_id = job_in_status(ledger, JobStatus.PENDING)
    ledger.log_error(job_id, "input file missing", actor=WORKER)
    job = ledger.cancel_job(job_id, "user changed their mind", actor=ACTOR).job
    assert job.status is JobStatus.CANCELLED
    assert (job.cancel_reason, job.failure_reason) == ("user changed their mind", None)
    assert [e.message for e in job.error_log] == ["input file missing"]
    assert job.completed_at == job.updated_at


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"message": "x" * (MAX_MESSAGE_CHARS + 1)}, "message"),
        ({"message": "  "}, "message"),
        ({"message": "ok", "details": {"blob": "x" * MAX_DETAILS_BYTES}}, "details"),
        ({"message": "ok", "details": {"nan": float("nan")}}, "details"),
        ({"message": "ok", "details": {"set": {1, 2}}}, "details"),
        ({"message": "ok", "item": ""}, "item"),
        ({"message": "nul\x00byte"}, "message"),
    ],
)
def test_error_texts_are_bounded(ledger: JobLedger, kwargs: dict[str, object], field: str) -> None:
    job_id = job_in_status(ledger, JobStatus.PROCESSING)
    with pytest.raises(InvalidInputError) as raised:
        ledger.log_error(job_id, actor=WORKER, **kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert stored_event_count(ledger, job_id) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"job_type": ""}, "type"),
        ({"job_type": "t" * 101}, "type"),
        ({"job_type": "import", "total_items": 0}, "totalItems"),
        ({"job_type": "import", "data": {"deep": _nested(40)}}, "data"),
        ({"job_type": "import", "actor": ""}, "actor"),
    ],
)
def test_create_rejects_bad_input(ledger: JobLedger, kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"actor": ACTOR, **kwargs}
    with pytest.raises(InvalidInputError) as raised:
        ledger.create_job(**arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert ledger.head() == 0


def test_client_json_cannot_forge_the_stores_type_markers(ledger: JobLedger) -> None:
    forged = {"_type_": "uuid_hex", "_data_": "0" * 32}
    job_id = ledger.create_job(job_type="import", data=forged, actor=ACTOR).job.id
    ledger.log_error(job_id, "m", details={"_type_": "nope", "_data_": 1}, actor=WORKER)
    job = ledger.get_job(job_id, version=2)
    assert job.data == forged
    assert job.error_log[0].details == {"_type_": "nope", "_data_": 1}


def test_every_event_records_its_actor(ledger: JobLedger) -> None:
    job_id = job_in_status(ledger, JobStatus.PROCESSING)
    ledger.log_error(job_id, "m", actor="w-2")
    ledger.update_progress(job_id, 1, actor="w-3")
    ledger.complete_job(job_id, actor="w-4")
    assert [e.actor for e in ledger.events.get(job_id)] == [ACTOR, WORKER, "w-2", "w-3", "w-4"]


def test_unknown_job_is_not_found(ledger: JobLedger) -> None:
    from uuid import uuid4

    with pytest.raises(JobNotFoundError):
        ledger.get_job(uuid4())
    with pytest.raises(JobNotFoundError):
        ledger.start_job(uuid4(), actor=WORKER)


def test_expected_version_makes_a_command_conditional(ledger: JobLedger) -> None:
    job_id = job_in_status(ledger, JobStatus.PENDING)
    with pytest.raises(VersionMismatchError) as raised:
        ledger.start_job(job_id, actor=WORKER, expected_version=2)
    assert (raised.value.expected, raised.value.actual) == (2, 1)
    assert ledger.start_job(job_id, actor=WORKER, expected_version=1).job.version == 2


def test_idempotent_create_returns_the_same_job(ledger: JobLedger) -> None:
    first = ledger.create_job(
        job_type="import", data={"a": 1, "b": 2}, total_items=3, actor=ACTOR, idempotency_key="k-1"
    )
    ledger.start_job(first.job.id, actor=WORKER)
    again = ledger.create_job(
        job_type="import", data={"b": 2, "a": 1}, total_items=3, actor=ACTOR, idempotency_key="k-1"
    )
    assert (again.job.id, again.replayed, again.job.status) == (
        first.job.id,
        True,
        JobStatus.PROCESSING,
    )
    assert again.position >= first.position
    other_owner = ledger.create_job(
        job_type="import",
        data={"a": 1, "b": 2},
        total_items=3,
        actor="someone-else",
        idempotency_key="k-1",
    )
    assert other_owner.job.id != first.job.id and not other_owner.replayed
    with pytest.raises(IdempotencyKeyReusedError):
        ledger.create_job(
            job_type="import", data={"a": 2}, total_items=3, actor=ACTOR, idempotency_key="k-1"
        )
    with pytest.raises(InvalidInputError):
        ledger.create_job(job_type="import", actor=ACTOR, idempotency_key="k" * 201)


HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
NEW_HASH = HASH.replace("aGFz", "bmV3")


def _admin_and_member(ledger: JobLedger) -> tuple[User, User]:
    admin = ledger.set_up_admin(email="admin@example.com", password_hash=HASH)
    member = ledger.register_user(
        email="ada@example.com", role=Role.MEMBER, password_hash=HASH, actor=str(admin.id)
    )
    return admin, member


def _user_events(ledger: JobLedger, user_id: UUID) -> list[tuple[type[Any], str]]:
    return [(type(e), e.actor) for e in ledger.events.get(user_id)]


def test_update_user_makes_every_change_in_one_save(
    ledger: JobLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, member = _admin_and_member(ledger)
    saves: list[tuple[Any, ...]] = []
    save = ledger.save

    def counted(*objs: Any, **kwargs: Any) -> Any:
        saves.append(objs)
        return save(*objs, **kwargs)

    monkeypatch.setattr(ledger, "save", counted)

    user = ledger.update_user(
        member.id, role=Role.WORKER, password_hash=NEW_HASH, disabled=True, actor=str(admin.id)
    )

    assert len(saves) == 1
    assert (user.role, user.password_hash, user.disabled) == (Role.WORKER, NEW_HASH, True)
    assert _user_events(ledger, member.id) == [
        (User.Registered, str(admin.id)),
        (User.RoleChanged, str(admin.id)),
        (User.Disabled, str(admin.id)),
        (User.PasswordChanged, str(admin.id)),
    ]
    fresh = ledger.get_user(member.id)
    assert (fresh.role, fresh.disabled, fresh.version) == (Role.WORKER, True, 4)
    enabled = ledger.update_user(member.id, role=Role.WORKER, disabled=False, actor="cli:root")
    assert enabled.disabled is False and enabled.version == 5
    assert _user_events(ledger, member.id)[-1] == (User.Enabled, "cli:root")


def test_update_user_records_nothing_when_nothing_changes(ledger: JobLedger) -> None:
    admin, member = _admin_and_member(ledger)

    user = ledger.update_user(member.id, role=Role.MEMBER, disabled=False, actor=str(admin.id))

    assert user.version == 1 and len(_user_events(ledger, member.id)) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"role": Role.WORKER, "password_hash": "not a hash"},
        {"disabled": True, "password_hash": "$" * 1_001},
        {"role": "root", "disabled": True},
        {"role": Role.WORKER, "disabled": True, "actor": ""},
    ],
)
def test_update_user_refuses_bad_input_and_records_nothing(
    ledger: JobLedger, changes: dict[str, Any]
) -> None:
    admin, member = _admin_and_member(ledger)

    with pytest.raises(InvalidInputError):
        ledger.update_user(member.id, **{"actor": str(admin.id), **changes})

    assert len(_user_events(ledger, member.id)) == 1
    user = ledger.get_user(member.id)
    assert (user.role, user.disabled, user.password_hash) == (Role.MEMBER, False, HASH)


def test_admins_cannot_demote_or_disable_themselves_even_with_other_changes(
    ledger: JobLedger,
) -> None:
    admin, _ = _admin_and_member(ledger)
    actor = str(admin.id)

    for changes in ({"role": Role.MEMBER}, {"password_hash": NEW_HASH, "disabled": True}):
        with pytest.raises(UserConflictError):
            ledger.update_user(admin.id, actor=actor, **changes)

    assert len(_user_events(ledger, admin.id)) == 1
    assert ledger.update_user(admin.id, password_hash=NEW_HASH, actor=actor).version == 2


def test_update_user_of_an_unknown_user_is_not_found(ledger: JobLedger) -> None:
    admin, _ = _admin_and_member(ledger)

    with pytest.raises(UserNotFoundError):
        ledger.update_user(uuid4(), role=Role.WORKER, actor=str(admin.id))
