"""Logging in to query transfer status (R9).

:func:`authenticate` is the one way in, for the CLI and the web view alike.
It never says whether a user exists: a wrong password, an unknown user and a
user without a password all raise the same :class:`AuthenticationFailed`
after the same work (an unknown user is checked against a dummy hash).

Guessing is limited per user name, known or not, by
:mod:`syndication.throttle`: the attempt is counted first, in one statement,
and an attempt inside the name's window is refused at once with
:class:`~syndication.errors.LoginThrottled` (its ``retry_after`` says when to
come back) without checking the password. Nothing waits. A success clears the
count. Log lines name a failed login's user name only by :func:`name_ref`,
since a name typed at a login prompt may be a mistyped password.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from argon2 import PasswordHasher
from sqlmodel import Session

from syndication.errors import AuthenticationFailed, LoginThrottled
from syndication.logs import get_logger
from syndication.passwords import check_password, default_hasher
from syndication.records import User
from syndication.store.models import UserRow, utcnow
from syndication.store.repository import user_record
from syndication.throttle import (
    FREE_ATTEMPTS,
    MAX_DELAY,
    USERNAME_LIMIT,
    admit,
    delay_after,
    reset,
    throttle_key,
)

__all__ = [
    "FAILED_MESSAGE", "FREE_ATTEMPTS", "MAX_DELAY", "USERNAME_LIMIT", "authenticate",
    "delay_after", "name_ref", "throttle_key",
]

FAILED_MESSAGE = "wrong user name or password"
"""The only thing a failed login ever says."""


def name_ref(key: str) -> str:
    """A short stand-in for a user name in logs (12 hex digits of its SHA-256): lines
    about one name can be correlated without the name, or a password typed as one,
    being written anywhere."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def authenticate(
    session: Session,
    username: str,
    password: str,
    clock: Callable[[], datetime] = utcnow,
    *,
    hasher: PasswordHasher | None = None,
) -> User:
    """The user ``username`` when ``password`` is theirs; else :class:`AuthenticationFailed`
    (:class:`LoginThrottled` when the name's window is closed, before any check).

    Commits the session: the attempt is counted before the password is checked,
    and its reset or a rehash is stored whatever the caller does next. The user
    is read and its transaction ended before the hash is verified, so no pooled
    connection is held through the verification (tens of milliseconds of CPU by
    design), and a SQLite store busy with other logins makes the reset wait its
    turn instead of failing.
    """
    hasher = hasher or default_hasher()
    key = throttle_key(username)
    log = get_logger(user_ref=name_ref(key))
    attempts = 0
    if key:
        try:
            attempts = admit(session, key, clock())
        except LoginThrottled as exc:
            log.warning("login_throttled", retry_after=exc.retry_after)
            raise

    usable = username and len(username) <= 64 and "\x00" not in username
    user = session.get(UserRow, username) if usable else None
    if user is not None:
        session.expunge(user)
    session.commit()
    if check_password(user, password, hasher, now=clock()) and user is not None:
        session.add(user)
        session.commit()
        if key:
            reset(session, key)
            session.commit()
        get_logger(user=user.id).info("login_succeeded")
        return user_record(user)

    session.commit()
    log.warning("login_failed", attempts=attempts)
    raise AuthenticationFailed(FAILED_MESSAGE)
