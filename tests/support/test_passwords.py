"""R9 passwords: the strong policy case by case, legacy passwords, changes, rehashing."""

from __future__ import annotations

import io
import itertools

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session

from syndication.passwords import (
    PasswordError,
    UnknownUser,
    WeakPassword,
    check_password,
    import_legacy,
    require_strong,
    set_password,
    weaknesses,
)
from syndication.store.models import UserRow

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Cheap argon2 parameters so the tests run fast; production uses the defaults."""

SAMPLES = {"upper": "ABCDEFGH", "lower": "abcdefgh", "digit": "12345678", "other": "#!?-_.@%"}


def mixed(groups: tuple[str, ...], length: int) -> str:
    """A password of ``length`` characters cycling through one sample of each group."""
    pools = [SAMPLES[g] for g in groups]
    return "".join(pools[i % len(pools)][i // len(pools) % 8] for i in range(length))


COMBINATIONS = [
    combo for size in range(1, 5) for combo in itertools.combinations(SAMPLES, size)
]


@pytest.mark.parametrize("groups", COMBINATIONS, ids="+".join)
def test_each_combination_of_groups_at_eight_characters(groups: tuple[str, ...]) -> None:
    password = mixed(groups, 8)
    assert len(password) == 8
    if len(groups) >= 3:
        assert weaknesses(password) == []
        require_strong(password)
    else:
        (missing,) = weaknesses(password)
        assert "at least 3 of the 4 groups" in missing
        assert f"it has {len(groups)}" in missing
        with pytest.raises(WeakPassword, match="not strong enough"):
            require_strong(password)


@pytest.mark.parametrize("groups", [c for c in COMBINATIONS if len(c) >= 3], ids="+".join)
def test_seven_characters_are_too_short_whatever_the_groups(groups: tuple[str, ...]) -> None:
    assert weaknesses(mixed(groups, 7)) == ["at least 8 characters (it has 7)"]
    assert weaknesses(mixed(groups, 8)) == []


def test_message_names_every_missing_thing() -> None:
    with pytest.raises(WeakPassword) as caught:
        require_strong("abc")
    message = str(caught.value)
    assert "at least 8 characters (it has 3)" in message
    assert "add upper case letters or digits or other characters" in message
    assert "abc" not in message.replace("lower case", "")


def test_non_ascii_letters_count_in_their_case_group() -> None:
    assert weaknesses("Åsa-öl99") == []
    assert weaknesses("ÅÄÖåäö12") == []


@given(st.text(max_size=30))
def test_policy_matches_its_definition_on_any_text(password: str) -> None:
    groups = sum(
        any(test(ch) for ch in password)
        for test in (str.isupper, str.islower, str.isdigit,
                     lambda c: not (c.isupper() or c.islower() or c.isdigit()))
    )
    import unicodedata

    strong = len(unicodedata.normalize("NFC", password)) >= 8 and groups >= 3
    assert (weaknesses(password) == []) == strong


def user(session: Session, user_id: str = "anna") -> UserRow:
    row = session.get(UserRow, user_id)
    assert row is not None
    return row


def test_first_password_needs_no_old_one_and_matches_exactly(seeded: Engine) -> None:
    with Session(seeded) as session:
        set_password(session, "anna", "Vinter-2026", old_password=None, hasher=FAST)
        session.commit()
        row = user(session)
        assert row.password_hash and row.password_hash.startswith("$argon2id$")
        assert "Vinter-2026" not in row.password_hash
        assert not row.password_legacy
        assert check_password(row, "Vinter-2026", FAST)
        assert not check_password(row, "vinter-2026", FAST)
        assert not check_password(row, "VINTER-2026", FAST)


def test_weak_new_password_is_refused_and_nothing_stored(seeded: Engine) -> None:
    with Session(seeded) as session:
        with pytest.raises(WeakPassword, match="at least 8 characters"):
            set_password(session, "anna", "Ab1!", old_password=None, hasher=FAST)
        assert user(session).password_hash is None


def test_change_without_or_with_a_wrong_old_password_is_refused(seeded: Engine) -> None:
    with Session(seeded) as session:
        set_password(session, "anna", "Vinter-2026", old_password=None, hasher=FAST)
        before = user(session).password_hash
        with pytest.raises(PasswordError, match="old password is required"):
            set_password(session, "anna", "Sommar-2027", old_password=None, hasher=FAST)
        with pytest.raises(PasswordError, match="old password is wrong"):
            set_password(session, "anna", "Sommar-2027", old_password="vinter-2026", hasher=FAST)
        assert user(session).password_hash == before
        set_password(session, "anna", "Sommar-2027", old_password="Vinter-2026", hasher=FAST)
        assert check_password(user(session), "Sommar-2027", FAST)
        assert not check_password(user(session), "Vinter-2026", FAST)


def test_legacy_password_matches_without_regard_to_case_until_changed(seeded: Engine) -> None:
    with Session(seeded) as session:
        assert import_legacy(session, "anna", "sommar", hasher=FAST)
        row = user(session)
        assert row.password_legacy
        for typed in ("sommar", "SOMMAR", "Sommar", "sOmMaR"):
            assert check_password(row, typed, FAST)
        assert not check_password(row, "sommar1", FAST)
        with pytest.raises(PasswordError, match="old password is required"):
            set_password(session, "anna", "Sommar-2027", old_password=None, hasher=FAST)
        set_password(session, "anna", "Sommar-2027", old_password="SOMMAR", hasher=FAST)
        row = user(session)
        assert not row.password_legacy
        assert check_password(row, "Sommar-2027", FAST)
        assert not check_password(row, "sommar-2027", FAST)
        assert not check_password(row, "sommar", FAST)


def test_legacy_import_never_downgrades_a_new_password(seeded: Engine) -> None:
    with Session(seeded) as session:
        set_password(session, "anna", "Vinter-2026", old_password=None, hasher=FAST)
        assert import_legacy(session, "anna", "gammalt", hasher=FAST) is False
        assert check_password(user(session), "Vinter-2026", FAST)
        with pytest.raises(UnknownUser):
            import_legacy(session, "nobody", "x", hasher=FAST)
        with pytest.raises(PasswordError, match="empty"):
            import_legacy(session, "anna", "", hasher=FAST)


def test_hash_is_upgraded_when_argon2_parameters_change(seeded: Engine) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    with Session(seeded) as session:
        set_password(session, "anna", "Vinter-2026", old_password=None, hasher=FAST)
        old_hash = user(session).password_hash
        assert check_password(user(session), "Vinter-2026", stronger)
        new_hash = user(session).password_hash
        assert new_hash != old_hash and "m=2048,t=2" in str(new_hash)
        assert not stronger.check_needs_rehash(str(new_hash))
        assert check_password(user(session), "Vinter-2026", stronger)


def test_no_password_or_hash_in_the_logs(seeded: Engine, captured_logs: io.StringIO) -> None:
    with Session(seeded) as session:
        import_legacy(session, "anna", "Gammalt-Hemligt", hasher=FAST)
        set_password(session, "anna", "Nytt-Hemligt-1", old_password="gammalt-hemligt",
                     hasher=FAST)
        check_password(user(session), "Nytt-Hemligt-1",
                       PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
        stored = str(user(session).password_hash)
    logged = captured_logs.getvalue()
    assert "password_set" in logged and "password_rehashed" in logged
    for secret in ("Gammalt-Hemligt", "gammalt-hemligt", "Nytt-Hemligt-1", stored, "$argon2"):
        assert secret not in logged
