"""Logging in: one message for every failure, the same work, and throttled guessing.

The burst, the victim's wait and the throttle's decision table are in test_throttle.py.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlmodel import Session

from syndication.auth import FAILED_MESSAGE, FREE_ATTEMPTS, authenticate, delay_after
from syndication.errors import AuthenticationFailed, LoginThrottled
from syndication.passwords import import_legacy, set_password
from syndication.store.models import LoginThrottleRow, UserRow


class CountingHasher(PasswordHasher):
    """A cheap hasher that counts verifications, to show every path does the same work."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verifications += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def with_password(seeded_any: Engine, hasher: CountingHasher) -> Engine:
    with Session(seeded_any) as session:
        set_password(session, "anna", "Vinter-2026", old_password=None, hasher=hasher)
        session.commit()
    return seeded_any


def login(engine: Engine, username: str, password: str, hasher: PasswordHasher,
          clock: Clock | None = None) -> str:
    clock = clock or Clock()
    with Session(engine) as session:
        try:
            return authenticate(session, username, password, clock, hasher=hasher).id
        except LoginThrottled as exc:
            return f"throttled: {exc.retry_after}"
        except AuthenticationFailed as exc:
            return f"failed: {exc}"


def test_right_password_logs_in_and_returns_no_hash(with_password: Engine,
                                                    hasher: CountingHasher) -> None:
    with Session(with_password) as session:
        user = authenticate(session, "anna", "Vinter-2026", Clock(), hasher=hasher)
    assert user.id == "anna"
    assert not hasattr(user, "password_hash")


@pytest.mark.parametrize(
    ("username", "password"),
    [("anna", "vinter-2026"), ("anna", ""), ("nobody", "Vinter-2026"), ("", "x"),
     ("x" * 500, "Vinter-2026")],
    ids=["wrong-case", "empty-password", "unknown-user", "empty-user", "huge-user"],
)
def test_wrong_password_and_unknown_user_fail_alike_with_one_verification(
    with_password: Engine, hasher: CountingHasher, username: str, password: str
) -> None:
    before = hasher.verifications
    assert login(with_password, username, password, hasher) == f"failed: {FAILED_MESSAGE}"
    assert hasher.verifications - before == 1


def test_user_without_password_fails_like_an_unknown_one(seeded: Engine,
                                                        hasher: CountingHasher) -> None:
    assert login(seeded, "anna", "", hasher) == f"failed: {FAILED_MESSAGE}"
    assert hasher.verifications == 1


def test_legacy_password_logs_in_in_any_case(seeded: Engine, hasher: CountingHasher) -> None:
    with Session(seeded) as session:
        import_legacy(session, "anna", "Sommar", hasher=hasher)
        session.commit()
    assert login(seeded, "anna", "SOMMAR", hasher) == "anna"
    assert login(seeded, "anna", "sommar", hasher) == "anna"


def test_repeated_failures_are_refused_for_a_growing_window_and_success_clears(
    with_password: Engine, hasher: CountingHasher
) -> None:
    clock = Clock()
    assert [login(with_password, "anna", "wrong", hasher, clock) for _ in range(3)] == [
        f"failed: {FAILED_MESSAGE}"] * 3
    waits = []
    for _ in range(3):
        refused = login(with_password, "anna", "wrong", hasher, clock)
        assert refused.startswith("throttled: ")
        waits.append(float(refused.split()[1]))
        clock.now += timedelta(seconds=waits[-1])
        assert login(with_password, "anna", "wrong", hasher, clock) == f"failed: {FAILED_MESSAGE}"
    assert waits == [delay_after(3), delay_after(4), delay_after(5)] == [1.0, 2.0, 4.0]
    clock.now += timedelta(seconds=7)
    assert login(with_password, "anna", "Vinter-2026", hasher, clock) == "throttled: 1"
    clock.now += timedelta(seconds=1)
    assert login(with_password, "anna", "Vinter-2026", hasher, clock) == "anna"
    with Session(with_password) as session:
        assert session.get(LoginThrottleRow, "anna") is None
    assert login(with_password, "anna", "wrong", hasher, clock) == f"failed: {FAILED_MESSAGE}"


def test_a_refused_attempt_checks_no_password_and_is_not_counted(
    with_password: Engine, hasher: CountingHasher
) -> None:
    clock = Clock()
    for _ in range(FREE_ATTEMPTS):
        login(with_password, "anna", "wrong", hasher, clock)
    before = hasher.verifications
    assert [login(with_password, "anna", "Vinter-2026", hasher, clock) for _ in range(5)] == [
        "throttled: 1"] * 5
    assert hasher.verifications == before
    with Session(with_password) as session:
        row = session.get(LoginThrottleRow, "anna")
        assert row is not None and row.failures == FREE_ATTEMPTS


def test_unknown_user_names_are_throttled_too(seeded: Engine, hasher: CountingHasher) -> None:
    clock = Clock()
    results = [login(seeded, "Ghost", "x", hasher, clock) for _ in range(5)]
    assert results == [f"failed: {FAILED_MESSAGE}"] * 3 + ["throttled: 1"] * 2
    with Session(seeded) as session:
        row = session.get(LoginThrottleRow, "ghost")
        assert row is not None and row.failures == 3


def test_throttled_answer_is_the_same_for_known_and_unknown_names(
    with_password: Engine, hasher: CountingHasher
) -> None:
    answers = {}
    for name in ("anna", "nobody"):
        clock = Clock()
        for _ in range(FREE_ATTEMPTS):
            login(with_password, name, "wrong", hasher, clock)
        with Session(with_password) as session, pytest.raises(LoginThrottled) as refused:
            authenticate(session, name, "wrong", clock, hasher=hasher)
        answers[name] = (type(refused.value), str(refused.value), refused.value.retry_after)
    assert answers["anna"] == answers["nobody"] == (
        LoginThrottled, "too many failed logins for this user name; try again in 1 s", 1)


def test_delay_is_capped() -> None:
    assert [delay_after(n) for n in (0, 2, 3, 4)] == [0.0, 0.0, 1.0, 2.0]
    assert delay_after(100) == 60.0


def test_no_password_or_hash_logged_on_login(with_password: Engine, hasher: CountingHasher,
                                             captured_logs: io.StringIO) -> None:
    login(with_password, "anna", "Vinter-2026", hasher)
    login(with_password, "anna", "Fel-Losen-1", hasher)
    login(with_password, "okand", "Hemlis-99", hasher)
    logged = captured_logs.getvalue()
    assert "login_succeeded" in logged and "login_failed" in logged
    for secret in ("Vinter-2026", "Fel-Losen-1", "Hemlis-99", "$argon2"):
        assert secret not in logged


def test_unknown_user_costs_one_verification_and_no_hashing_once_warm(
    with_password: Engine, hasher: CountingHasher
) -> None:
    from syndication.passwords import _dummy_hash

    login(with_password, "ghost", "x", hasher)
    made = _dummy_hash.cache_info().misses
    for name in ("ghost2", "ghost3"):
        before = hasher.verifications
        login(with_password, name, "x", hasher)
        assert hasher.verifications - before == 1
    assert _dummy_hash.cache_info().misses == made


class ConnectionWatchingHasher(CountingHasher):
    """Records how many of the engine's pooled connections are checked out while a hash
    is being verified."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.checked_out: list[int] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.checked_out.append(self.engine.pool.checkedout())  # type: ignore[attr-defined]
        return super().verify(hash, password)


@pytest.mark.parametrize("password", ["Vinter-2026", "wrong"], ids=["right", "wrong"])
def test_no_connection_is_held_while_the_hash_is_verified(with_password: Engine,
                                                          password: str) -> None:
    """The verification is slow on purpose; a pooled connection held through it would let
    a burst of logins starve every other request of the store."""
    watching = ConnectionWatchingHasher(with_password)
    login(with_password, "anna", password, watching)
    assert watching.checked_out == [0]


def test_a_rehash_after_login_is_still_stored(with_password: Engine) -> None:
    """The user is verified detached from the session; a rehash made then still reaches
    the store."""
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    with Session(with_password) as session:
        before = session.get(UserRow, "anna")
        assert before is not None
        old_hash = before.password_hash
    assert login(with_password, "anna", "Vinter-2026", stronger) == "anna"
    with Session(with_password) as session:
        after = session.get(UserRow, "anna")
        assert after is not None and after.password_hash != old_hash
        assert stronger.verify(after.password_hash or "", "Vinter-2026")
