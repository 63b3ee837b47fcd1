"""Office API keys on both databases, and the one credential format they share with
session tokens: a key authenticates its office until revoked, and only its digest is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factories
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from syndication import credentials
from syndication.access import ApiKeyPrincipal
from syndication.api_keys import (
    UnknownKey,
    authenticate_key,
    create_key,
    list_keys,
    revoke_key,
)
from syndication.store.db import session_scope
from syndication.store.models import ApiKeyRow, UserRow

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(engine: Engine) -> Engine:
    with session_scope(engine) as session:
        session.add_all(factories.rows(factories.office_record(),
                                       factories.office_record("K2")))
    return engine


def create(engine: Engine, office: str = factories.OFFICE_ID) -> str:
    with session_scope(engine) as session:
        return create_key(session, office, NOW).key


def auth(engine: Engine, key: str, at: datetime = NOW) -> ApiKeyPrincipal | None:
    with session_scope(engine) as session:
        return authenticate_key(session, key, at)


def test_a_key_acts_for_its_office_until_revoked(store: Engine) -> None:
    key = create(store)
    key_id = key.split("_")[1]
    assert auth(store, key, NOW + timedelta(minutes=5)) == ApiKeyPrincipal(key_id, "K1")
    with Session(store) as session:
        (row,) = list_keys(session)
        assert row.last_used_at == NOW + timedelta(minutes=5) and row.revoked_at is None
        assert list_keys(session, "K2") == []
    with session_scope(store) as session:
        assert revoke_key(session, key_id, NOW)
    assert auth(store, key) is None
    with session_scope(store) as session:
        assert not revoke_key(session, key_id, NOW)


def test_only_the_digest_of_the_secret_is_stored(store: Engine) -> None:
    key = create(store, "K2")
    prefix, key_id, secret = key.split("_", 2)
    assert prefix == "sk" and len(key_id) == credentials.ID_HEX_DIGITS
    with Session(store) as session:
        (row,) = session.scalars(select(ApiKeyRow)).all()
    assert (row.id, row.office_id) == (key_id, "K2")
    assert row.secret_hash == credentials.digest(secret) and secret not in row.secret_hash


def test_wrong_unknown_and_malformed_keys_are_refused(store: Engine) -> None:
    key = create(store)
    prefix, key_id, secret = key.split("_", 2)
    for presented in (
        f"{prefix}_{key_id}_{secret[:-1]}{'B' if secret[-1] != 'B' else 'C'}",
        f"{prefix}_{'f' * 16}_{secret}", f"st_{key_id}_{secret}", f"{prefix}_{key_id}",
        f"{prefix}_{key_id.upper()}_{secret}", "", "sk__", key + "\x00", "sk_" + "0" * 300,
    ):
        assert auth(store, presented) is None, presented
    assert auth(store, f"  {key}\n") is not None


def test_keys_need_a_stored_office_and_a_stored_id(store: Engine) -> None:
    with session_scope(store) as session, pytest.raises(UnknownKey, match="no office with id"):
        create_key(session, "NOPE")
    with session_scope(store) as session, pytest.raises(UnknownKey, match="no API key with id"):
        revoke_key(session, "0123456789abcdef")


def test_every_minted_credential_parses_back() -> None:
    """Secrets of token_urlsafe contain ``_`` and ``-``: the hex id still splits them off."""
    for prefix in (credentials.API_KEY_PREFIX, credentials.SESSION_TOKEN_PREFIX):
        for _ in range(300):
            minted = credentials.mint(prefix)
            parsed = credentials.parse(prefix, minted.text)
            assert parsed is not None and parsed.id == minted.id
            assert credentials.digest(parsed.secret) == minted.digest
            assert credentials.matches(minted.digest, parsed.secret)


def test_a_new_user_is_an_agent() -> None:
    from syndication.access import DEFAULT_ROLE, ROLES

    user = UserRow(id="U", office_id="K1", name="N")
    assert user.role == DEFAULT_ROLE == ROLES[0] == "agent"
    column = UserRow.__table__.c.role  # type: ignore[attr-defined]
    assert column.server_default.arg == DEFAULT_ROLE
