"""Session tokens on both databases: issued once, stored as a digest, expiring by an
injected clock, revoked by a log-out and by any password change of their user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factories
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select
from sqlmodel import Session

from syndication import credentials
from syndication.access import SUPPORT, UserPrincipal
from syndication.errors import SyndicationError
from syndication.passwords import import_legacy, set_password
from syndication.scope import set_role
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import SessionTokenRow
from syndication.tokens import (
    DEFAULT_TOKEN_HOURS,
    authenticate_token,
    issue_token,
    revoke_token,
    revoke_user_tokens,
)

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "Vinter-2026"


@pytest.fixture
def store(engine: Engine) -> Engine:
    with session_scope(engine) as session:
        session.add_all(factories.rows(
            factories.office_record(), factories.user_record(companies=("AB-1",)),
            factories.user_record("U-OTHER"),
        ))
    return engine


def issue(engine: Engine, user_id: str | None = None, **kwargs: int) -> tuple[str, datetime]:
    with session_scope(engine) as session:
        return issue_token(session, user_id or factories.USER_ID, NOW, **kwargs)


def principal(engine: Engine, token: str, at: datetime) -> UserPrincipal | None:
    with session_scope(engine) as session:
        return authenticate_token(session, token, at)


def test_a_token_authenticates_its_user_until_it_expires(store: Engine) -> None:
    token, expires_at = issue(store)
    assert DEFAULT_TOKEN_HOURS == Settings().token_hours == 8
    assert expires_at == NOW + timedelta(hours=8)
    assert token.startswith("st_")
    found = principal(store, token, NOW + timedelta(hours=7, minutes=59))
    assert found == UserPrincipal(user_id=factories.USER_ID, office_id=factories.OFFICE_ID,
                                  role="agent", companies=("AB-1",))
    assert principal(store, token, expires_at) is None
    assert principal(store, token, expires_at + timedelta(days=1)) is None


def test_the_lifetime_is_a_parameter(store: Engine) -> None:
    token, expires_at = issue(store, hours=1)
    assert expires_at == NOW + timedelta(hours=1)
    assert principal(store, token, NOW + timedelta(minutes=59)) is not None
    assert principal(store, token, NOW + timedelta(minutes=60)) is None
    with pytest.raises(SyndicationError, match="positive"):
        issue(store, hours=0)


def test_only_a_digest_is_stored(store: Engine) -> None:
    token, _ = issue(store)
    with Session(store) as session:
        rows = list(session.scalars(select(SessionTokenRow)))
    assert len(rows) == 1
    secret = token.split("_", 2)[2]
    assert rows[0].secret_hash == credentials.digest(secret)
    assert secret not in rows[0].secret_hash and token.split("_")[1] == rows[0].id


def test_wrong_malformed_and_unknown_tokens_are_refused(store: Engine) -> None:
    token, _ = issue(store)
    prefix, token_id, secret = token.split("_", 2)
    forged = f"{prefix}_{token_id}_{'A' * len(secret)}"
    unknown = f"{prefix}_{'0' * 16}_{secret}"
    for presented in (forged, unknown, "", "st_", token + "x", token.replace("st_", "sk_", 1),
                      "st_" + "a" * 500):
        assert principal(store, presented, NOW) is None, presented
    assert principal(store, token, NOW) is not None


def test_revoke_ends_one_token(store: Engine) -> None:
    first, _ = issue(store)
    second, _ = issue(store)
    with session_scope(store) as session:
        assert revoke_token(session, first, NOW)
    with session_scope(store) as session:
        assert not revoke_token(session, first, NOW)
    assert principal(store, first, NOW) is None
    assert principal(store, second, NOW) is not None


def test_a_password_change_revokes_every_token_of_that_user(store: Engine) -> None:
    mine, other = issue(store), issue(store, "U-OTHER")
    with session_scope(store) as session:
        set_password(session, factories.USER_ID, PASSWORD, old_password=None, hasher=FAST,
                     now=NOW + timedelta(hours=1))
    assert principal(store, mine[0], NOW + timedelta(hours=2)) is None
    assert principal(store, other[0], NOW + timedelta(hours=2)) is not None
    later, _ = issue(store)
    assert principal(store, later, NOW + timedelta(hours=2)) is not None
    with session_scope(store) as session:
        set_password(session, factories.USER_ID, "Sommar-2027!", old_password=PASSWORD,
                     hasher=FAST)
    assert principal(store, later, NOW + timedelta(hours=2)) is None


def test_a_legacy_import_revokes_the_tokens_too(store: Engine) -> None:
    token, _ = issue(store, "U-OTHER")
    with session_scope(store) as session:
        assert import_legacy(session, "U-OTHER", "gammalt", hasher=FAST)
    assert principal(store, token, NOW) is None


def test_a_role_change_applies_to_tokens_already_issued(store: Engine) -> None:
    token, _ = issue(store)
    with session_scope(store) as session:
        set_role(session, factories.USER_ID, SUPPORT)
    found = principal(store, token, NOW)
    assert found is not None and found.role == SUPPORT


def test_revoke_user_tokens_counts(store: Engine) -> None:
    issue(store)
    issue(store)
    with session_scope(store) as session:
        assert revoke_user_tokens(session, factories.USER_ID, NOW) == 2
    with session_scope(store) as session:
        assert revoke_user_tokens(session, factories.USER_ID, NOW) == 0


def test_a_token_for_an_unknown_user_is_refused(store: Engine) -> None:
    with pytest.raises(SyndicationError, match="no user with id 'NOBODY'"):
        issue(store, "NOBODY")


def test_token_hours_setting() -> None:
    assert Settings.from_env({"SYNDICATION_TOKEN_HOURS": "2"}).token_hours == 2
    with pytest.raises(SyndicationError, match="SYNDICATION_TOKEN_HOURS must be a positive"):
        Settings.from_env({"SYNDICATION_TOKEN_HOURS": "0"})
