"""The outbox table: messages staged in a transaction, claimed and settled by relays.

:func:`stage` adds a message to the session's transaction, so it commits or
rolls back with the state that waits for it. Given the broker, it also sends
the message as soon as that transaction has committed (the writer's own
flush, so a healthy broker sees no delay); what that flush could not send
stays for a :class:`~syndication.outbox.relay.Relay`.

Two relays never send one row at once: :func:`claim` marks rows with a claim
token and a time limit in one ``UPDATE``. On PostgreSQL the rows are picked
with ``FOR UPDATE SKIP LOCKED``, so concurrent relays take disjoint rows
without waiting; SQLite runs one writer at a time, so the ``UPDATE`` is the
claim. A claim whose time is up (its relay died between claiming and
settling) may be taken again: the message is then sent at least once, which
the consumers tolerate (they check the delivery generation and the document
hash, R10).

The transfer job's own rows take a shorter way (:func:`stage_claimed`): the
row is inserted already claimed by its writer, in the job's Core transaction;
after the commit :func:`send_staged` sends it and notes its id, and the relay
thread of the process deletes the noted rows in one statement per round
(:func:`settle_sent`). The job pays no transaction for its outbox row; a
writer that dies before sending leaves a claim that runs out after
:data:`WRITER_CLAIM_SECONDS`, and a relay then sends the row.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from sqlalchemy import Connection, Engine, and_, delete, event, insert, or_, select, update
from sqlmodel import Session, col

from syndication.logs import get_logger
from syndication.store.db import session_scope
from syndication.store.models import OutboxRow, utcnow

CLAIM_SECONDS = 60.0
"""How long a claim holds: far longer than one send, so only a dead relay's claim expires."""

WRITER_CLAIM_SECONDS = 30.0
"""How long a writer's own claim holds: its relay deletes the row within a round (about a
second) once sent; only a writer that died before sending lets the claim run out."""

WRITER_PREFIX = "writer:"
"""The claim token of a row its writer is sending (:func:`stage_claimed`)."""

_PENDING = "outbox.pending"
_OUTBOX: Any = OutboxRow.__table__  # type: ignore[attr-defined]


def stage(
    session: Session,
    message: dramatiq.Message[Any],
    *,
    delay_ms: int = 0,
    broker: dramatiq.Broker | None = None,
) -> OutboxRow:
    """Add ``message`` to the outbox in ``session``'s transaction; with ``broker``, send it
    right after the commit (see the module doc)."""
    now = utcnow()
    row = OutboxRow(
        queue_name=message.queue_name,
        actor_name=message.actor_name,
        message_id=message.message_id,
        kwargs=dict(message.kwargs),
        options=dict(message.options),
        not_before=now + timedelta(milliseconds=max(0, delay_ms)),
        created_at=now,
    )
    session.add(row)
    if broker is not None:
        if not session.info.get("outbox.listening"):
            session.info["outbox.listening"] = True
            event.listen(session, "after_commit", _after_commit)
            event.listen(session, "after_rollback", _after_rollback)
        session.info.setdefault(_PENDING, []).append(row)
        session.info["outbox.broker"] = broker
    return row


def _after_commit(session: Session) -> None:
    rows: list[OutboxRow] = session.info.pop(_PENDING, None) or []
    broker = session.info.pop("outbox.broker", None)
    ids = [row.id for row in rows if row.id is not None]
    if not ids or broker is None:
        return
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    try:
        send_claimed(engine, broker, claim(engine, ids=ids))
    except Exception as exc:  # noqa: BLE001 - a relay sends what this flush could not
        get_logger().warning("outbox.flush_failed", rows=len(ids), error=str(exc))


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop("outbox.broker", None)


def claimable(now: datetime, older_than: datetime | None = None) -> Any:
    """The condition of a row a relay may claim: unclaimed, or its claim's time is up;
    with ``older_than``, only rows created before it (the writer's own flush goes first)."""
    free = or_(col(OutboxRow.claimed_until).is_(None), col(OutboxRow.claimed_until) < now)
    if older_than is None:
        return free
    return and_(free, col(OutboxRow.created_at) < older_than)


def claim(
    engine: Engine,
    *,
    ids: Sequence[int] | None = None,
    limit: int = 500,
    older_than: datetime | None = None,
    owner: str = "relay",
) -> list[OutboxRow]:
    """Claim up to ``limit`` claimable rows (of ``ids`` when given), oldest first; the
    claimed rows. A row another relay holds is skipped, never waited for."""
    now = utcnow()
    token = f"{owner}:{uuid.uuid4().hex[:12]}"
    condition = claimable(now, older_than)
    picked = select(col(OutboxRow.id)).where(condition).order_by(col(OutboxRow.id)).limit(limit)
    if ids is not None:
        picked = picked.where(col(OutboxRow.id).in_(list(ids)))
    with session_scope(engine) as session:
        if engine.dialect.name != "postgresql" and session.execute(picked).first() is None:
            return []
        session.execute(
            update(OutboxRow)
            .where(col(OutboxRow.id).in_(picked.with_for_update(skip_locked=True)), condition)
            .values(
                claimed_by=token,
                claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                relay_attempts=OutboxRow.relay_attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return list(session.scalars(
            select(OutboxRow).where(col(OutboxRow.claimed_by) == token).order_by(col(OutboxRow.id))
        ))


def message_of(row: OutboxRow) -> dramatiq.Message[Any]:
    """The dramatiq message a row holds."""
    return dramatiq.Message(
        queue_name=row.queue_name,
        actor_name=row.actor_name,
        args=(),
        kwargs=dict(row.kwargs),
        options=dict(row.options),
        message_id=row.message_id,
        message_timestamp=int(row.created_at.timestamp() * 1000),
    )


def send_claimed(engine: Engine, broker: dramatiq.Broker, rows: Sequence[OutboxRow]) -> int:
    """Send claimed rows in order, each with what is left of its delay; delete the ones
    the broker accepted. At the first refusal the rest are released (for the next
    relay round) with the error, and the error is raised."""
    sent: list[int] = []
    try:
        for row in rows:
            left = int((row.not_before - utcnow()).total_seconds() * 1000)
            broker.enqueue(message_of(row), delay=left if left > 0 else None)
            assert row.id is not None
            sent.append(row.id)
    except Exception as exc:
        _settle(engine, sent, [r for r in rows if r.id not in set(sent)], str(exc))
        raise
    _settle(engine, sent, [], None)
    return len(sent)


def _settle(
    engine: Engine, sent: list[int], unsent: Sequence[OutboxRow], error: str | None
) -> None:
    with session_scope(engine) as session:
        if sent:
            session.execute(delete(OutboxRow).where(col(OutboxRow.id).in_(sent)))
        for row in unsent:
            session.execute(
                update(OutboxRow)
                .where(col(OutboxRow.id) == row.id, col(OutboxRow.claimed_by) == row.claimed_by)
                .values(claimed_by=None, claimed_until=None, last_error=(error or "")[:500])
            )


def pending(engine: Engine) -> int:
    """How many messages wait in the outbox: every row but those their writer is sending
    (:func:`stage_claimed`) or has sent and its relay has yet to delete."""
    from sqlalchemy import func

    waiting = or_(col(OutboxRow.claimed_by).is_(None),
                  ~col(OutboxRow.claimed_by).startswith(WRITER_PREFIX),
                  col(OutboxRow.claimed_until) < utcnow())
    with session_scope(engine) as session:
        return int(session.execute(
            select(func.count()).select_from(OutboxRow).where(waiting)
        ).scalar_one())


@dataclass(frozen=True, slots=True)
class Staging:
    """A message to stage in a Core transaction, and the broker that sends it."""

    broker: dramatiq.Broker
    message: dramatiq.Message[Any]
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class Staged:
    """A row :func:`stage_claimed` inserted, for :func:`send_staged` after the commit."""

    staging: Staging
    row_id: int
    token: str


def stage_claimed(conn: Connection, staging: Staging) -> Staged:
    """Insert ``staging``'s message in ``conn``'s transaction, already claimed by this
    writer, so no relay sends it while the writer does (see the module doc)."""
    now = utcnow()
    message = staging.message
    token = f"{WRITER_PREFIX}{uuid.uuid4().hex[:12]}"
    row_id = conn.execute(_STAGE_CLAIMED, {
        "queue_name": message.queue_name, "actor_name": message.actor_name,
        "message_id": message.message_id, "kwargs": dict(message.kwargs),
        "options": dict(message.options),
        "not_before": now + timedelta(milliseconds=max(0, staging.delay_ms)),
        "created_at": now, "claimed_by": token,
        "claimed_until": now + timedelta(seconds=WRITER_CLAIM_SECONDS), "relay_attempts": 0,
    }).inserted_primary_key[0]  # type: ignore[index]
    return Staged(staging, int(row_id), token)


_STAGE_CLAIMED = insert(_OUTBOX)


def send_staged(engine: Engine, staged: Sequence[Staged]) -> None:
    """Send the rows a committed transaction staged; note the sent ones for the relay to
    delete. A row the broker refused is released at once for the relays."""
    for row in staged:
        delay = row.staging.delay_ms
        try:
            row.staging.broker.enqueue(row.staging.message, delay=delay if delay > 0 else None)
        except Exception as exc:  # noqa: BLE001 - a relay sends what this writer could not
            get_logger().warning("outbox.flush_failed", rows=1, error=str(exc))
            try:
                with engine.begin() as conn:
                    conn.execute(
                        update(_OUTBOX)
                        .where(_OUTBOX.c.id == row.row_id, _OUTBOX.c.claimed_by == row.token)
                        .values(claimed_by=None, claimed_until=None,
                                last_error=str(exc)[:500])
                    )
            except Exception as store:  # noqa: BLE001 - the claim runs out instead
                get_logger().warning("outbox.release_failed", error=str(store))
            continue
        _SENT.note(engine, row.row_id)


class _SentRows:
    """Ids of rows this process sent and no relay has deleted yet, per engine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: weakref.WeakKeyDictionary[Engine, list[int]] = weakref.WeakKeyDictionary()

    def note(self, engine: Engine, row_id: int) -> None:
        with self._lock:
            self._ids.setdefault(engine, []).append(row_id)

    def take(self, engine: Engine) -> list[int]:
        with self._lock:
            return self._ids.pop(engine, [])

    def give_back(self, engine: Engine, ids: list[int]) -> None:
        with self._lock:
            self._ids.setdefault(engine, []).extend(ids)


_SENT = _SentRows()


def settle_sent(engine: Engine, batch: int = 1000) -> int:
    """Delete the rows this process's writers sent (:func:`send_staged`), ``batch`` per
    statement; how many. Ids the store refused to delete are kept for the next round."""
    ids = _SENT.take(engine)
    done = 0
    try:
        while done < len(ids):
            chunk = ids[done:done + batch]
            with engine.begin() as conn:
                conn.execute(delete(_OUTBOX).where(_OUTBOX.c.id.in_(chunk)))
            done += len(chunk)
    except Exception:
        _SENT.give_back(engine, ids[done:])
        raise
    return done
