"""The login throttle against a burst and for its victim, on SQLite and PostgreSQL.

Nothing here times anything: that no login sleeps is shown by a ``time.sleep``
that fails the test when called, and the clock is one the test moves.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlmodel import Session

from syndication.auth import FAILED_MESSAGE, authenticate
from syndication.errors import AuthenticationFailed, LoginThrottled
from syndication.passwords import set_password
from syndication.store.models import LoginThrottleRow, UserRow
from syndication.throttle import FREE_ATTEMPTS, MAX_DELAY, admit, delay_after, wait_left

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PASSWORD = "Vinter-2026"


class SpyHasher(PasswordHasher):
    """A cheap hasher that records, thread-safely, every password it verifies."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: Counter[str] = Counter()
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        with self._lock:
            self.verified[str(password)] += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.sleep`` replaced by one that records the call and fails the caller."""
    calls: list[float] = []

    def forbidden(seconds: float) -> None:
        calls.append(seconds)
        raise AssertionError(f"a login slept {seconds} s")

    monkeypatch.setattr(time, "sleep", forbidden)
    return calls


@pytest.fixture
def two_users(seeded_any: Engine) -> tuple[Engine, SpyHasher]:
    hasher = SpyHasher()
    with Session(seeded_any) as session:
        session.add(UserRow(id="bertil", office_id="OFF1", name="Bertil Support"))
        session.flush()
        for user in ("anna", "bertil"):
            set_password(session, user, PASSWORD, old_password=None, hasher=hasher)
        session.commit()
    hasher.verified.clear()
    return seeded_any, hasher


def attempt(engine: Engine, username: str, password: str, hasher: PasswordHasher,
            clock: Clock) -> str:
    with Session(engine) as session:
        try:
            return authenticate(session, username, password, clock, hasher=hasher).id
        except LoginThrottled as exc:
            return f"throttled {exc.retry_after}"
        except AuthenticationFailed as exc:
            return f"failed: {exc}"


def test_a_burst_of_failures_reaches_verification_only_as_often_as_allowed(
    two_users: tuple[Engine, SpyHasher], no_sleeping: list[float]
) -> None:
    engine, hasher = two_users
    clock = Clock()
    start = threading.Barrier(21)

    def attacker(n: int) -> str:
        start.wait()
        return attempt(engine, "anna", f"guess-{n:02d}", hasher, clock)

    def colleague() -> str:
        start.wait()
        return attempt(engine, "bertil", PASSWORD, hasher, clock)

    with ThreadPoolExecutor(max_workers=21) as pool:
        burst = [pool.submit(attacker, n) for n in range(20)]
        other = pool.submit(colleague)
        results = Counter(future.result(timeout=60) for future in burst)
        assert other.result(timeout=60) == "bertil"

    assert results == {f"failed: {FAILED_MESSAGE}": FREE_ATTEMPTS,
                       "throttled 1": 20 - FREE_ATTEMPTS}
    guesses = {password: n for password, n in hasher.verified.items() if password != PASSWORD}
    assert sum(guesses.values()) == FREE_ATTEMPTS and set(guesses.values()) == {1}
    assert hasher.verified[PASSWORD] == 1
    assert no_sleeping == []
    with Session(engine) as session:
        row = session.get(LoginThrottleRow, "anna")
        assert row is not None and row.failures == FREE_ATTEMPTS
        assert session.get(LoginThrottleRow, "bertil") is None


def test_a_victim_waits_no_longer_than_the_policy_after_the_attack(
    two_users: tuple[Engine, SpyHasher], no_sleeping: list[float]
) -> None:
    engine, hasher = two_users
    clock = Clock()
    admitted = 0
    while admitted < 15:
        answer = attempt(engine, "Anna", f"guess-{admitted}", hasher, clock)
        if answer.startswith("throttled"):
            clock.advance(int(answer.split()[1]))
        else:
            admitted += 1
    last_guess = clock.now
    assert delay_after(admitted) == MAX_DELAY

    refused_for = 0
    while (answer := attempt(engine, "anna", PASSWORD, hasher, clock)) != "anna":
        assert answer == f"throttled {int(MAX_DELAY) - refused_for}"
        clock.advance(1)
        refused_for += 1
    assert clock.now - last_guess == timedelta(seconds=MAX_DELAY)
    assert no_sleeping == []
    assert attempt(engine, "anna", "guess-again", hasher, clock) == f"failed: {FAILED_MESSAGE}"


@pytest.mark.parametrize(
    ("attempts", "since_last", "wait"),
    [
        (0, None, 0.0),
        (FREE_ATTEMPTS - 1, 0.0, 0.0),
        (FREE_ATTEMPTS, 0.0, 1.0),
        (FREE_ATTEMPTS, 0.4, 0.6),
        (FREE_ATTEMPTS, 1.0, 0.0),
        (FREE_ATTEMPTS + 2, 3.0, 1.0),
        (FREE_ATTEMPTS + 2, 4.0, 0.0),
        (FREE_ATTEMPTS + 40, 59.0, 1.0),
        (FREE_ATTEMPTS + 40, 60.0, 0.0),
    ],
)
def test_decision_table(engine: Engine, attempts: int, since_last: float | None,
                        wait: float) -> None:
    """The module docstring's table, decided in Python and by the counting statement alike."""
    last = None if since_last is None else START - timedelta(seconds=since_last)
    assert wait_left(attempts, last, START) == pytest.approx(wait)
    with Session(engine) as session:
        if attempts:
            session.add(LoginThrottleRow(username="k", failures=attempts, last_failure_at=last))
            session.commit()
        if wait:
            with pytest.raises(LoginThrottled) as refused:
                admit(session, "k", START)
            assert refused.value.retry_after == max(1, -int(-wait // 1))
            assert session.get(LoginThrottleRow, "k").failures == attempts  # type: ignore[union-attr]
        else:
            assert admit(session, "k", START) == attempts + 1
