"""The one retry loop of the ledger's commands, alone and through the users' use cases.

``until_saved`` runs a command again on fresh state when its save lost an optimistic-concurrency
race, a bounded number of times; a refusal against a cached copy only means "look again", a
refusal against fresh state is the answer. The users' commands use it on every store.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain import retries
from domain.errors import LedgerUnavailableError
from domain.ledger import JobLedger
from domain.retries import until_saved
from domain.user import Role, User
from domain.users import MAX_USER_ATTEMPTS
from stores import Store

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
RIVAL_HASH = HASH.replace("aGFz", "cml2")
NEW_HASH = HASH.replace("aGFz", "bmV3")


class Exhausted(Exception):
    """Raised by the tests' ``exhausted`` factory."""


class Refused(Exception):
    """A rule refusing the state a command ran on."""


class Attempts:
    """A command that fails with the given errors in turn, then answers the state it ran on."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.states: list[str] = []

    def __call__(self, state: str) -> str:
        self.states.append(state)
        if self.errors:
            raise self.errors.pop(0)
        return state


class Loads:
    """Fresh states, numbered: ``fresh-1``, ``fresh-2``..."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"fresh-{self.count}"


@pytest.fixture
def back_offs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The attempts after which the loop backed off (without sleeping)."""
    calls: list[int] = []
    monkeypatch.setattr(retries, "back_off", calls.append)
    return calls


def _run(attempt: Attempts, loads: Loads, **kwargs: Any) -> str:
    return until_saved(
        attempt, loads, attempts=3, exhausted=lambda: Exhausted("gave up"), **kwargs
    )


def test_a_command_that_saves_runs_once_on_the_cached_copy(back_offs: list[int]) -> None:
    attempt, loads = Attempts(), Loads()

    assert _run(attempt, loads, cached="cached", stale=(Refused,)) == "cached"
    assert (attempt.states, loads.count, back_offs) == (["cached"], 0, [])


def test_without_a_cached_copy_the_first_attempt_runs_on_fresh_state(
    back_offs: list[int],
) -> None:
    attempt, loads = Attempts(), Loads()

    assert _run(attempt, loads) == "fresh-1"
    assert back_offs == []


def test_a_refusal_or_a_lost_race_on_the_cached_copy_runs_again_on_fresh_state_at_once(
    back_offs: list[int],
) -> None:
    for error in (Refused(), IntegrityError()):
        attempt, loads = Attempts(error), Loads()

        assert _run(attempt, loads, cached="cached", stale=(Refused,)) == "fresh-1"
        assert attempt.states == ["cached", "fresh-1"]
    assert back_offs == []


def test_a_refusal_of_fresh_state_is_the_answer(back_offs: list[int]) -> None:
    attempt, loads = Attempts(Refused(), Refused()), Loads()

    with pytest.raises(Refused):
        _run(attempt, loads, cached="cached", stale=(Refused,))
    assert attempt.states == ["cached", "fresh-1"]


def test_errors_that_are_not_stale_are_raised_even_against_the_cached_copy() -> None:
    attempt = Attempts(ValueError("bad input"))

    with pytest.raises(ValueError):
        _run(attempt, Loads(), cached="cached", stale=(Refused,))
    assert attempt.states == ["cached"]


def test_lost_races_on_fresh_state_back_off_then_run_on_fresher_state(
    back_offs: list[int],
) -> None:
    attempt, loads = Attempts(IntegrityError(), IntegrityError()), Loads()

    assert _run(attempt, loads) == "fresh-3"
    assert attempt.states == ["fresh-1", "fresh-2", "fresh-3"]
    assert back_offs == [1, 2]


def test_retries_are_bounded_and_raise_what_exhausted_gives(back_offs: list[int]) -> None:
    attempt = Attempts(*(IntegrityError() for _ in range(10)))

    with pytest.raises(Exhausted):
        _run(attempt, Loads())
    assert len(attempt.states) == 3 and back_offs == [1, 2, 3]


class UsersOvertaken(JobLedger):
    """A ledger where, before each save of a change to a user, another writer changes that user
    first (``overtakes`` times; then the saves go through)."""

    overtakes = 10**9

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        for obj in objs:
            if isinstance(obj, User) and obj.version > 1 and self.overtakes > 0:
                self.overtakes -= 1
                rival: User = self.repository.get(obj.id)
                rival.change_password(RIVAL_HASH, actor="rival")
                super().save(rival)
        return super().save(*objs, **kwargs)


def _overtaken(store_url: str, overtakes: int) -> tuple[UsersOvertaken, User, User]:
    ledger = UsersOvertaken(env=Store.from_url(store_url).ledger_env())
    admin = ledger.set_up_admin(email="admin@example.com", password_hash=HASH)
    member = ledger.register_user(
        email="ada@example.com", role=Role.MEMBER, password_hash=HASH, actor=str(admin.id)
    )
    ledger.overtakes = overtakes
    return ledger, admin, member


def test_a_user_change_that_lost_a_race_is_made_on_the_fresh_state(store_url: str) -> None:
    ledger, admin, member = _overtaken(store_url, overtakes=1)

    user = ledger.update_user(
        member.id, role=Role.WORKER, disabled=True, actor=str(admin.id)
    )

    assert (user.role, user.disabled, user.password_hash) == (Role.WORKER, True, RIVAL_HASH)
    events = list(ledger.events.get(member.id))
    assert [(type(e), e.actor) for e in events] == [
        (User.Registered, str(admin.id)),
        (User.PasswordChanged, "rival"),
        (User.RoleChanged, str(admin.id)),
        (User.Disabled, str(admin.id)),
    ]
    ledger.close()


def test_user_changes_that_always_lose_give_up_and_say_so(store_url: str) -> None:
    ledger, admin, member = _overtaken(store_url, overtakes=10**9)

    with pytest.raises(LedgerUnavailableError, match="changing too fast"):
        ledger.update_user(member.id, password_hash=NEW_HASH, actor=str(admin.id))

    events = list(ledger.events.get(member.id))
    assert [e.actor for e in events[1:]] == ["rival"] * MAX_USER_ATTEMPTS
    assert ledger.get_user(member.id).password_hash == RIVAL_HASH
    ledger.close()

