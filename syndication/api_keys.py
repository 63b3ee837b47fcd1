"""Office API keys (R14): a program acting for one office.

:func:`create_key` mints ``sk_<key id>_<secret>`` (see
:mod:`syndication.credentials` for the format and why SHA-256 is the right
hash for it) and returns the text once; the store keeps the key id, the
office and the secret's digest. :func:`authenticate_key` turns a presented key
into an :class:`~syndication.access.ApiKeyPrincipal`, or ``None`` for an
unknown, malformed, wrong or revoked key alike. Log lines name a key by its
id only, never the key.

Rotating a key: create the new one, give it to the program, then revoke the
old one; both work in between, so nothing stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from syndication import credentials
from syndication.access import ApiKeyPrincipal
from syndication.errors import SyndicationError
from syndication.logs import get_logger
from syndication.store.models import ApiKeyRow, OfficeRow, utcnow

__all__ = [
    "CreatedKey", "UnknownKey", "authenticate_key", "create_key", "list_keys", "revoke_key",
]


class UnknownKey(SyndicationError, LookupError):
    """An API key id that is not stored, or an office that is not, when managing keys."""


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``key`` is shown once and never stored."""

    key_id: str
    office_id: str
    key: str
    created_at: datetime


def create_key(session: Session, office_id: str, now: datetime | None = None) -> CreatedKey:
    """A new API key for ``office_id`` (which must be stored); the caller commits."""
    if session.get(OfficeRow, office_id) is None:
        raise UnknownKey(f"no office with id {office_id!r}; an API key belongs to a stored office")
    minted = credentials.mint(credentials.API_KEY_PREFIX)
    moment = now or utcnow()
    session.add(ApiKeyRow(
        id=minted.id, office_id=office_id, secret_hash=minted.digest, created_at=moment
    ))
    get_logger(key_id=minted.id, office=office_id).info("api_key_created")
    return CreatedKey(minted.id, office_id, minted.text, moment)


def list_keys(session: Session, office_id: str | None = None) -> list[ApiKeyRow]:
    """The stored keys, of one office or all, oldest first (rows carry no key, only a digest)."""
    query = select(ApiKeyRow).order_by(col(ApiKeyRow.created_at), col(ApiKeyRow.id))
    if office_id is not None:
        query = query.where(col(ApiKeyRow.office_id) == office_id)
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: str, now: datetime | None = None) -> bool:
    """Revoke the key ``key_id``; ``False`` when it already was. The caller commits."""
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise UnknownKey(f"no API key with id {key_id!r}")
    if row.revoked_at is not None:
        return False
    row.revoked_at = now or utcnow()
    session.add(row)
    get_logger(key_id=key_id, office=row.office_id).info("api_key_revoked")
    return True


def authenticate_key(
    session: Session, presented: str, now: datetime | None = None
) -> ApiKeyPrincipal | None:
    """The office principal of ``presented`` when it is a live key; else ``None``.

    The secret's digest is compared in constant time, and a key whose id is
    unknown is compared against a dummy digest, so the answer takes as long
    either way. A success records when the key was last used (the caller
    commits).
    """
    parsed = credentials.parse(credentials.API_KEY_PREFIX, presented)
    if parsed is None:
        return None
    row = session.get(ApiKeyRow, parsed.id)
    stored = row.secret_hash if row is not None else credentials.DUMMY_DIGEST
    if not credentials.matches(stored, parsed.secret) or row is None:
        return None
    if row.revoked_at is not None:
        get_logger(key_id=row.id).warning("api_key_refused", reason="revoked")
        return None
    row.last_used_at = now or utcnow()
    session.add(row)
    return ApiKeyPrincipal(key_id=row.id, office_id=row.office_id)
