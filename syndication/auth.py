"""Logging in to query transfer status (R9).

:func:`authenticate` is the one way in, for the CLI and the web view alike.
It never says whether a user exists: a wrong password, an unknown user and a
user without a password all raise the same :class:`AuthenticationFailed`
after the same work (an unknown user is checked against a dummy hash).

Guessing is slowed down per user name, known or not (``LoginThrottleRow``):
after :data:`FREE_FAILURES` failures each attempt first waits
``BASE_DELAY * 2 ** (failures - FREE_FAILURES)`` seconds (at most
:data:`MAX_DELAY`) since the last failure, through an injected ``sleep``. A
success clears the count. Failures are committed at once, so a caller that
rolls back on the exception does not erase them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from syndication.errors import AuthenticationFailed
from syndication.logs import get_logger
from syndication.passwords import check_password, default_hasher
from syndication.records import User
from syndication.store.models import LoginThrottleRow, UserRow, utcnow
from syndication.store.repository import user_record

FAILED_MESSAGE = "wrong user name or password"
"""The only thing a failed login ever says."""

FREE_FAILURES = 3
BASE_DELAY = 1.0
MAX_DELAY = 60.0
USERNAME_LIMIT = 200


def throttle_key(username: str) -> str:
    """The name failures are counted under: case-folded, trimmed, cut to the column size."""
    return username.strip().casefold()[:USERNAME_LIMIT]


def delay_after(failures: int) -> float:
    """Seconds an attempt must wait after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY, BASE_DELAY * 2 ** (failures - FREE_FAILURES))


def _wait_for_throttle(
    row: LoginThrottleRow | None, now: datetime, sleep: Callable[[float], None]
) -> None:
    if row is None or not row.failures:
        return
    wait = delay_after(row.failures)
    if row.last_failure_at is not None:
        wait -= (now - row.last_failure_at).total_seconds()
    if wait > 0:
        sleep(wait)


def authenticate(
    session: Session,
    username: str,
    password: str,
    clock: Callable[[], datetime] = utcnow,
    *,
    sleep: Callable[[float], None] = time.sleep,
    hasher: PasswordHasher | None = None,
) -> User:
    """The user ``username`` when ``password`` is theirs; else :class:`AuthenticationFailed`.

    Commits the session: the failure count (or its reset, or a rehash) is
    stored whatever the caller does next.
    """
    hasher = hasher or default_hasher()
    key = throttle_key(username)
    log = get_logger(user=key)
    throttle = session.get(LoginThrottleRow, key) if key else None
    _wait_for_throttle(throttle, clock(), sleep)

    user = session.get(UserRow, username) if username and len(username) <= 64 else None
    if check_password(user, password, hasher, now=clock()) and user is not None:
        if throttle is not None:
            session.execute(delete(LoginThrottleRow).where(col(LoginThrottleRow.username) == key))
        session.commit()
        log.info("login_succeeded")
        return user_record(user)

    session.commit()
    if key:
        failures = count_failure(session, key, clock())
        log.warning("login_failed", failures=failures)
    raise AuthenticationFailed(FAILED_MESSAGE)


def count_failure(session: Session, key: str, now: datetime) -> int:
    """Add one failure for ``key`` and commit; returns the new count.

    The increment is one ``UPDATE … SET failures = failures + 1``, so concurrent
    failures are all counted; the first failure of a name inserts its row, and
    when a concurrent login inserted it first the update is simply retried.
    """
    increment = (
        update(LoginThrottleRow)
        .where(col(LoginThrottleRow.username) == key)
        .values(failures=col(LoginThrottleRow.failures) + 1, last_failure_at=now)
        .returning(col(LoginThrottleRow.failures))
    )
    for _ in range(2):
        failures = session.execute(increment).scalar_one_or_none()
        if failures is not None:
            session.commit()
            return int(failures)
        session.add(LoginThrottleRow(username=key, failures=1, last_failure_at=now))
        try:
            session.commit()
            return 1
        except IntegrityError:
            session.rollback()
    raise RuntimeError(f"could not count a failed login for {key!r}")
