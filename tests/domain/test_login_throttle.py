"""The login throttle on the user: per account and address, per account, unlocking, old events.

Five failures from one address refuse that address only; the account as a whole slows down
beyond ten failures and refuses everyone at fifty; an operator's unlock clears the failures; and
failures stored before addresses were recorded still load. Run on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.persistence import StoredEvent

from domain.errors import LoginThrottledError
from domain.ledger import JobLedger
from domain.user import (
    ACCOUNT_DELAY_AFTER,
    LOGIN_WINDOW,
    MAX_ACCOUNT_DELAY,
    MAX_ACCOUNT_FAILED_LOGINS,
    MAX_FAILED_LOGINS,
    UNKNOWN_ADDRESS,
    Role,
    User,
    account_delay,
)

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
ATTACKER, OWNER = "203.0.113.7", "198.51.100.20"


def _member(ledger: JobLedger) -> User:
    admin = ledger.set_up_admin(email="admin@example.com", password_hash=HASH)
    return ledger.register_user(
        email="ada@example.com", role=Role.MEMBER, password_hash=HASH, actor=str(admin.id)
    )


def _fail_at(user: User, at: datetime, address: str) -> None:
    """Folds a LoginFailed event that happened at ``at`` into the user (and its pending events)."""
    event = User.LoginFailed(  # type: ignore[call-arg]
        originator_id=user.id, originator_version=user.version + 1, timestamp=at,
        actor="anonymous", address=address,
    )  # fmt: skip
    event.mutate(user)
    user._pending_events.append(event)


def test_failures_from_one_address_lock_that_address_only(ledger: JobLedger) -> None:
    member = _member(ledger)
    for _ in range(MAX_FAILED_LOGINS):
        ledger.record_failed_login(member.id, ATTACKER)

    user = ledger.get_user(member.id)
    with pytest.raises(LoginThrottledError) as refused:
        user.check_login_allowed(ATTACKER)
    assert 890 <= refused.value.retry_after <= 900
    user.check_login_allowed(OWNER)
    with pytest.raises(LoginThrottledError):
        ledger.record_failed_login(member.id, ATTACKER)
    assert [f.address for f in user.failed_logins] == [ATTACKER] * MAX_FAILED_LOGINS
    assert len(list(ledger.events.get(member.id))) == 1 + MAX_FAILED_LOGINS


def test_the_owner_at_another_address_still_logs_in_and_may_fail_too(ledger: JobLedger) -> None:
    member = _member(ledger)
    for _ in range(MAX_FAILED_LOGINS):
        ledger.record_failed_login(member.id, ATTACKER)

    ledger.record_failed_login(member.id, OWNER)
    ledger.get_user(member.id).check_login_allowed(OWNER)


def test_failures_beyond_the_threshold_delay_every_address_boundedly(ledger: JobLedger) -> None:
    member = _member(ledger)
    for number in range(ACCOUNT_DELAY_AFTER + 1):
        ledger.record_failed_login(member.id, f"10.0.0.{number}")

    user = ledger.get_user(member.id)
    with pytest.raises(LoginThrottledError) as delayed:
        user.check_login_allowed(OWNER)
    assert 1 <= delayed.value.retry_after <= 2
    user.check_login_allowed(OWNER, now=datetime.now(UTC) + timedelta(seconds=3))
    assert [account_delay(n).total_seconds() for n in (1, 10, 11, 12, 13, 16, 17, 50, 10**6)] == [
        0, 0, 2, 4, 8, 60, 60, 60, 60
    ]


def test_the_account_wide_limit_refuses_every_address_for_the_window(ledger: JobLedger) -> None:
    member = _member(ledger)
    user = ledger.get_user(member.id)
    start = datetime.now(UTC) - timedelta(minutes=14)
    for number in range(MAX_ACCOUNT_FAILED_LOGINS):
        _fail_at(user, start + timedelta(seconds=number), f"10.0.{number}.1")
    ledger.save(user)

    stored = ledger.get_user(member.id)
    later = start + timedelta(seconds=MAX_ACCOUNT_FAILED_LOGINS) + MAX_ACCOUNT_DELAY * 2
    with pytest.raises(LoginThrottledError) as refused:
        stored.check_login_allowed(OWNER, now=later)
    assert refused.value.retry_after == pytest.approx(
        (start + LOGIN_WINDOW - later).total_seconds(), abs=1
    )
    stored.check_login_allowed(OWNER, now=start + LOGIN_WINDOW + timedelta(seconds=1))


def test_the_user_keeps_a_bounded_number_of_failures(ledger: JobLedger) -> None:
    member = _member(ledger)
    user = ledger.get_user(member.id)
    start = datetime.now(UTC) - timedelta(hours=3)
    for number in range(3 * MAX_ACCOUNT_FAILED_LOGINS):
        _fail_at(user, start + timedelta(seconds=number), ATTACKER)
    for number in range(3):
        _fail_at(user, start + timedelta(hours=2, seconds=number), OWNER)

    assert [f.address for f in user.failed_logins] == [OWNER] * 3
    ledger.save(user)
    assert len(ledger.get_user(member.id).failed_logins) == 3


def test_unlocking_clears_the_failures(ledger: JobLedger) -> None:
    member = _member(ledger)
    for _ in range(MAX_FAILED_LOGINS):
        ledger.record_failed_login(member.id, ATTACKER)

    unlocked = ledger.unlock_logins(member.id, actor="cli:operator")

    assert unlocked.failed_logins == []
    ledger.get_user(member.id).check_login_allowed(ATTACKER)
    ledger.record_failed_login(member.id, ATTACKER)
    events = list(ledger.events.get(member.id))
    assert [type(e).__name__ for e in events[-2:]] == ["LoginsUnlocked", "LoginFailed"]
    assert events[-2].actor == "cli:operator"  # type: ignore[attr-defined]
    ledger.unlock_logins(member.id, actor="cli:operator")
    version = ledger.get_user(member.id).version
    assert ledger.unlock_logins(member.id, actor="cli:operator").version == version


def test_old_login_failures_without_an_address_still_load(ledger: JobLedger) -> None:
    member = _member(ledger)
    user = ledger.get_user(member.id)
    user.fail_login(ATTACKER)
    (event,) = user.collect_events()
    mapper = ledger.mapper
    assert mapper.compressor is None and mapper.cipher is None, "the test writes plain state"
    state = mapper.transcoder.decode(mapper.to_stored_event(event).state)
    assert state.pop("class_version") == 2 and state.pop("address") == ATTACKER
    old = StoredEvent(
        originator_id=member.id, originator_version=event.originator_version,
        topic=mapper.to_stored_event(event).topic, state=mapper.transcoder.encode(state),
    )  # fmt: skip
    ledger.recorder.insert_events([old])

    loaded = ledger.get_user(member.id)
    assert [f.address for f in loaded.failed_logins] == [UNKNOWN_ADDRESS]


def test_the_upcast_gives_old_failures_the_unknown_address() -> None:
    state: dict[str, object] = {"actor": "anonymous"}
    User.LoginFailed.upcast_v1_v2(state)
    assert state == {"actor": "anonymous", "address": UNKNOWN_ADDRESS}
