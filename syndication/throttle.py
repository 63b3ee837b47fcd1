"""The login throttle: attempts per user name, counted before the password is checked (R9).

Policy. Attempts are counted per user name (case-folded, known or not, so the
throttle says nothing about who exists). The first :data:`FREE_ATTEMPTS`
attempts of a name pass at once; after that an attempt passes only when
``delay_after(attempts)`` seconds have gone by since the last attempt that
passed — 1 s, 2 s, 4 s … doubling up to :data:`MAX_DELAY` (60 s). An attempt
inside that window is refused at once with :class:`LoginThrottled`, which
carries the seconds until the window opens (``retry_after``); it is not
counted, and the password is never checked. A successful login clears the
name's count.

=========================  =====================  ==============================
attempts passed so far     since the last one     decision
=========================  =====================  ==============================
0 … FREE_ATTEMPTS - 1      any                    pass, count it
FREE_ATTEMPTS + k          ≥ delay_after(…)       pass, count it
FREE_ATTEMPTS + k          < delay_after(…)       refuse, retry after the rest
=========================  =====================  ==============================

Counting is one statement (``INSERT … ON CONFLICT DO UPDATE … WHERE <window
open> RETURNING``) committed before the password is checked, so parallel
attempts queue on the row and at most the allowed number reach the argon2
verification; nothing ever sleeps, so a refused request holds no database
connection and no server worker.

The trade-off, chosen: the count is per user name, so an attacker who knows a
name can make its owner wait. How long is bounded: a victim's correct login is
refused for at most :data:`MAX_DELAY` seconds after the attacker's last
attempt that passed (refused attempts do not extend the window). An attacker
who keeps trying gets one guess per :data:`MAX_DELAY` and competes with the
victim for that one slot, so while the attack lasts the victim may be refused
again; an operator ends it by deleting the name's ``login_throttle`` row. In
exchange, guessing one name costs at most 1440 verified guesses a day,
whatever the number of addresses the attacker uses.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from syndication.errors import LoginThrottled
from syndication.store.models import LoginThrottleRow, UTCDateTime

FREE_ATTEMPTS = 3
BASE_DELAY = 1.0
MAX_DELAY = 60.0
USERNAME_LIMIT = 200

THROTTLED_MESSAGE = "too many failed logins for this user name; try again in {seconds} s"
"""What a refused attempt says, the same for every name, known or not."""


def throttle_key(username: str) -> str:
    """The name attempts are counted under: case-folded, trimmed, cut to the column size
    (a NUL, which PostgreSQL cannot store, becomes U+FFFD)."""
    return username.strip().casefold().replace("\x00", "\ufffd")[:USERNAME_LIMIT]


def delay_after(attempts: int) -> float:
    """Seconds that must pass after the last attempt when ``attempts`` have passed."""
    if attempts < FREE_ATTEMPTS:
        return 0.0
    return min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - FREE_ATTEMPTS))


def wait_left(attempts: int, last_attempt_at: datetime | None, now: datetime) -> float:
    """Seconds until the next attempt may pass (0 when it may pass now): the decision
    the counting statement makes in SQL, for the refusal's ``retry_after``."""
    if attempts < FREE_ATTEMPTS or last_attempt_at is None:
        return 0.0
    return max(0.0, delay_after(attempts) - (now - last_attempt_at).total_seconds())


def _window_open(now: datetime) -> ColumnElement[bool]:
    """SQL for "an attempt may pass at ``now``" over the stored row, as :func:`wait_left`:
    the latest allowed last-attempt time for each count until the cap is reached."""
    table = LoginThrottleRow.__table__.c  # type: ignore[attr-defined]
    steps = []
    attempts = FREE_ATTEMPTS
    while delay_after(attempts) < MAX_DELAY:
        steps.append((table.failures == attempts, _moment(now, delay_after(attempts))))
        attempts += 1
    latest = case(*steps, else_=_moment(now, MAX_DELAY))
    return or_(
        table.failures < FREE_ATTEMPTS,
        table.last_failure_at.is_(None),
        table.last_failure_at <= latest,
    )


def _moment(now: datetime, seconds_before: float) -> Any:
    return literal(now - timedelta(seconds=seconds_before), UTCDateTime())


def _counting_statement(dialect: str, key: str, now: datetime) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = LoginThrottleRow.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(username=key, failures=1, last_failure_at=now)
    return statement.on_conflict_do_update(
        index_elements=[table.c.username],
        set_={"failures": table.c.failures + 1, "last_failure_at": now},
        where=_window_open(now),
    ).returning(table.c.failures)


def admit(session: Session, key: str, now: datetime) -> int:
    """Count an attempt for ``key`` when its window is open, commit, and return the count;
    raise :class:`LoginThrottled` (nothing counted) when it is not.

    The count and the decision are one statement; the refusal reads the row once more
    only to say how long to wait.
    """
    dialect = session.get_bind().dialect.name
    attempts = session.execute(_counting_statement(dialect, key, now)).scalar_one_or_none()
    session.commit()
    if attempts is not None:
        return int(attempts)
    row = session.execute(
        select(col(LoginThrottleRow.failures), col(LoginThrottleRow.last_failure_at))
        .where(col(LoginThrottleRow.username) == key)
    ).one_or_none()
    session.commit()
    wait = wait_left(row.failures, row.last_failure_at, now) if row is not None else 0.0
    seconds = max(1, math.ceil(wait))
    raise LoginThrottled(THROTTLED_MESSAGE.format(seconds=seconds), retry_after=seconds)


def reset(session: Session, key: str) -> None:
    """Clear ``key``'s count after a successful login; the caller commits."""
    session.execute(delete(LoginThrottleRow).where(col(LoginThrottleRow.username) == key))
