"""Session tokens for the API: what a user holds after logging in with a password (R9, R14).

:func:`issue_token` mints ``st_<token id>_<secret>`` (format and hash in
:mod:`syndication.credentials`), stores only the secret's digest and an
expiry (``SYNDICATION_TOKEN_HOURS``, default 8 h), and returns the token once.
:func:`authenticate_token` gives the user's
:class:`~syndication.access.UserPrincipal` for a live token and ``None`` for
an expired, revoked, wrong, malformed or unknown one alike. A password change
revokes every token of the user (:func:`revoke_user_tokens`, called by
:func:`syndication.passwords.set_password`), so a stolen token dies with the
password it was issued under. The clock is always passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from syndication import credentials
from syndication.access import UserPrincipal
from syndication.errors import SyndicationError
from syndication.logs import get_logger
from syndication.scope import principal_of
from syndication.settings import Settings
from syndication.store.models import SessionTokenRow, UserRow

DEFAULT_TOKEN_HOURS = Settings().token_hours
"""A working day; ``SYNDICATION_TOKEN_HOURS`` (``Settings.token_hours``) sets another."""

__all__ = [
    "DEFAULT_TOKEN_HOURS", "authenticate_token", "issue_token", "revoke_token",
    "revoke_user_tokens",
]


def issue_token(
    session: Session, user_id: str, now: datetime, *, hours: int = DEFAULT_TOKEN_HOURS
) -> tuple[str, datetime]:
    """A new token for ``user_id`` valid for ``hours``: ``(token, expires_at)``.

    The caller has authenticated the user and commits the session; the token
    text is returned once and never stored.
    """
    if hours <= 0:
        raise SyndicationError(f"a session token must live a positive number of hours, not {hours}")
    if session.get(UserRow, user_id) is None:
        raise SyndicationError(f"no user with id {user_id!r}; a token needs a stored user")
    minted = credentials.mint(credentials.SESSION_TOKEN_PREFIX)
    expires_at = now + timedelta(hours=hours)
    session.add(SessionTokenRow(
        id=minted.id, user_id=user_id, secret_hash=minted.digest, created_at=now,
        expires_at=expires_at,
    ))
    get_logger(user=user_id).info("session_issued", expires_at=expires_at.isoformat())
    return minted.text, expires_at


def _live_row(session: Session, presented: str) -> SessionTokenRow | None:
    """The row of ``presented`` when its secret matches (constant time); else ``None``."""
    parsed = credentials.parse(credentials.SESSION_TOKEN_PREFIX, presented)
    if parsed is None:
        return None
    row = session.get(SessionTokenRow, parsed.id)
    stored = row.secret_hash if row is not None else credentials.DUMMY_DIGEST
    if not credentials.matches(stored, parsed.secret):
        return None
    return row


def authenticate_token(session: Session, presented: str, now: datetime) -> UserPrincipal | None:
    """The principal of the user holding ``presented``, or ``None``.

    ``None`` when the token is not one of ours, its secret is wrong, it was
    revoked, it expired (``now`` at or past ``expires_at``), or its user is no
    longer stored. The role and companies are read afresh, so a role change
    applies to tokens already issued.
    """
    row = _live_row(session, presented)
    if row is None or row.revoked_at is not None or now >= row.expires_at:
        return None
    user = session.get(UserRow, row.user_id)
    if user is None:
        return None
    return principal_of(user)


def revoke_token(session: Session, presented: str, now: datetime) -> bool:
    """Revoke ``presented`` (a log-out); ``False`` when it is not a live token of ours."""
    row = _live_row(session, presented)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.add(row)
    get_logger(user=row.user_id).info("session_revoked")
    return True


def revoke_user_tokens(session: Session, user_id: str, now: datetime) -> int:
    """Revoke every unrevoked token of ``user_id`` in one statement; returns how many."""
    result = session.execute(
        update(SessionTokenRow)
        .where(col(SessionTokenRow.user_id) == user_id, col(SessionTokenRow.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        get_logger(user=user_id).info("sessions_revoked", count=count)
    return count
