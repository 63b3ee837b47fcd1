"""Many messages to one actor, staged and sent without a dramatiq ``Message`` each.

A fan-out batch queues hundreds of transfer jobs whose messages differ only in
their keyword values and ids. Built one by one — a ``Message``, its copies with
the Redis id, ``asdict`` and ``json.dumps`` for the broker, a ``dict`` and the
JSON column's serializer for the outbox row — they were half of the fan-out's
CPU. :class:`Uniform` renders them from a template instead: the outbox row
holds what :func:`~syndication.outbox.rows.stage_many` writes for the same
message, and the broker gets the very bytes ``Message.encode`` gives
(``tests/transfer/test_uniform_messages.py`` pins both).

:func:`stage_uniform` is :func:`~syndication.outbox.rows.stage_many` for such a
batch: the rows go in one ``INSERT`` in the session's transaction, already
claimed by their writer; after the commit the writer sends them and deletes
them in one statement (a relay sends whatever it could not). The pre-encoded
send needs a broker that takes encoded messages
(:meth:`syndication.broker.RecoveringRedisBroker.enqueue_encoded`) and
middleware without enqueue hooks; any other broker gets dramatiq messages,
built from the same template, through its own ``enqueue``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from sqlalchemy import Engine, event, update
from sqlmodel import Session

from syndication.logs import get_logger
from syndication.outbox.rows import SEND_CHUNK, WRITER_CLAIM_SECONDS, WRITER_PREFIX, _enqueue
from syndication.store.bulk import BulkStatement
from syndication.store.db import session_scope
from syndication.store.models import OutboxRow, utcnow

_OUTBOX: Any = OutboxRow.__table__  # type: ignore[attr-defined]
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode
"""A value as dramatiq's ``JSONEncoder`` writes it inside a message."""
_SPACED = json.JSONEncoder().encode
"""A value as SQLAlchemy's JSON column writes it (``json.dumps``' defaults)."""
_STRING = encode_basestring_ascii
"""A string as both encoders write it (they escape to ASCII): the function they call
for one, without their own call around it."""
_PENDING = "outbox.pending_uniform"

_INSERT = BulkStatement(_OUTBOX, (
    "queue_name", "actor_name", "message_id", "kwargs", "options", "not_before",
    "created_at", "claimed_by", "claimed_until", "relay_attempts", "last_error",
), raw=("kwargs", "options"))


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def uuid4_texts(count: int) -> list[str]:
    """``count`` random ids in the form of ``str(uuid.uuid4())`` (dramatiq's message ids
    and the Redis broker's), from one read of the system's randomness: ``uuid4`` reads
    it once per id and builds a ``UUID`` to print it, a few microseconds per pair."""
    digits = os.urandom(16 * count).hex()
    return [
        f"{d[:8]}-{d[8:12]}-4{d[13:16]}-{_VARIANT[d[16]]}{d[17:20]}-{d[20:32]}"
        for d in (digits[start:start + 32] for start in range(0, 32 * count, 32))
    ]


@dataclass(frozen=True, slots=True)
class Uniform:
    """The messages of one actor that take the keyword arguments ``keys``, without
    options or delay: what differs between two is their values and their ids.

    What every message of it shares is rendered once, when it is made: the start of
    a message's body and each key as the body and the outbox column write it."""

    queue_name: str
    actor_name: str
    keys: tuple[str, ...]
    _opening: str = field(init=False, repr=False, compare=False)
    _body_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _column_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rendered = object.__setattr__
        rendered(self, "_opening", f'{{"queue_name":{_COMPACT(self.queue_name)},'
                                   f'"actor_name":{_COMPACT(self.actor_name)},'
                                   f'"args":[],"kwargs":{{')
        rendered(self, "_body_keys", tuple(f"{_COMPACT(key)}:" for key in self.keys))
        rendered(self, "_column_keys", tuple(f"{_SPACED(key)}: " for key in self.keys))

    @classmethod
    def of(cls, actor: dramatiq.Actor[..., Any], keys: Sequence[str]) -> Uniform:
        """The messages of ``actor`` taking ``keys`` (``actor.message_with_options``'s)."""
        return cls(actor.queue_name, actor.actor_name, tuple(keys))

    def message(self, values: Sequence[Any], message_id: str, timestamp: int
                ) -> dramatiq.Message[Any]:
        """The dramatiq message of ``values``."""
        return dramatiq.Message(
            queue_name=self.queue_name, actor_name=self.actor_name, args=(),
            kwargs=dict(zip(self.keys, values, strict=True)), options={},
            message_id=message_id, message_timestamp=timestamp,
        )

    def kwargs_column(self, values: Sequence[Any]) -> str:
        """The outbox row's ``kwargs`` of ``values``, as its JSON column writes the dict."""
        return "{" + ", ".join(
            key + (_STRING(value) if type(value) is str else _SPACED(value))
            for key, value in zip(self._column_keys, values, strict=True)
        ) + "}"

    def body(self, values: Sequence[Any], message_id: str, timestamp: int,
             redis_message_id: str) -> bytes:
        """``Message.encode()`` of the message of ``values`` as the Redis broker sends
        it: with ``redis_message_id`` as its one option."""
        kwargs = ",".join(
            key + (_STRING(value) if type(value) is str else _COMPACT(value))
            for key, value in zip(self._body_keys, values, strict=True)
        )
        return (
            f'{self._opening}{kwargs}}},'
            f'"options":{{"redis_message_id":{_STRING(redis_message_id)}}},'
            f'"message_id":{_STRING(message_id)},"message_timestamp":{int(timestamp)}}}'
        ).encode()


@dataclass(frozen=True, slots=True)
class _Batch:
    uniform: Uniform
    mark: str
    values: dict[str, Sequence[Any]]
    timestamp: int


def stage_uniform(
    session: Session, uniform: Uniform, values: Sequence[Sequence[Any]], *,
    broker: dramatiq.Broker | None = None,
) -> str | None:
    """Stage one message of ``uniform`` per item of ``values`` in ``session``'s
    transaction, in one ``INSERT`` (:mod:`syndication.store.bulk`); with ``broker``,
    send them right after the commit. The batch's mark (``None`` when there was nothing
    to stage).

    Without ``broker`` the rows are those :func:`~syndication.outbox.rows.stage_many`
    writes for the same messages, marked with the batch, for a relay. With it they are
    inserted already claimed by this writer for
    :data:`~syndication.outbox.rows.WRITER_CLAIM_SECONDS` (the mark is the claim's
    token, the send its first attempt), as the transfer job's own row is
    (:func:`~syndication.outbox.rows.stage_claimed`): no relay takes them while the
    writer sends, and the writer needs no claiming statement of its own.
    """
    if not values:
        return None
    now = utcnow()
    if broker is None:
        mark, until, attempts = f"staged:{uuid.uuid4().hex[:16]}", None, 0
    else:
        mark = f"{WRITER_PREFIX}{uuid.uuid4().hex[:12]}"
        until, attempts = now + timedelta(seconds=WRITER_CLAIM_SECONDS), 1
    name, queue = uniform.actor_name, uniform.queue_name
    ids = uuid4_texts(len(values))
    _INSERT.execute(session.connection(), [
        (queue, name, message_id, uniform.kwargs_column(item), "{}", now, now, mark,
         until, attempts, None)
        for message_id, item in zip(ids, values, strict=True)
    ])
    if broker is not None:
        if not session.info.get("outbox.listening_uniform"):
            session.info["outbox.listening_uniform"] = True
            event.listen(session, "after_commit", _after_commit)
            event.listen(session, "after_rollback", _after_rollback)
        batch = _Batch(uniform, mark, dict(zip(ids, values, strict=True)),
                       int(time.time() * 1000))
        session.info.setdefault(_PENDING, []).append((broker, batch))
    return mark


def _after_commit(session: Session) -> None:
    staged: list[tuple[dramatiq.Broker, _Batch]] = session.info.pop(_PENDING, None) or []
    for broker, batch in staged:
        _flush_own(session, broker, batch)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _flush_own(session: Session, broker: dramatiq.Broker, batch: _Batch) -> None:
    """The writer's own send of ``batch`` it just committed, whose rows it claimed as it
    inserted them: send them in order, delete them. What it cannot send is released
    for a relay; a writer that dies first leaves a claim that runs out."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    try:
        _send(engine, broker, batch.mark, batch, list(batch.values))
    except Exception as exc:  # noqa: BLE001 - a relay sends what this flush could not
        get_logger().warning("outbox.flush_failed", rows=len(batch.values), error=str(exc))


def sends_encoded(broker: dramatiq.Broker) -> bool:
    """True when ``broker`` takes encoded messages and no middleware of it has an
    enqueue hook (which would need a ``Message`` each)."""
    if not hasattr(broker, "enqueue_encoded"):
        return False
    return not any(
        type(m).before_enqueue is not Middleware.before_enqueue
        or type(m).after_enqueue is not Middleware.after_enqueue
        for m in broker.middleware
    )


def _send(engine: Engine, broker: dramatiq.Broker, token: str, batch: _Batch,
          message_ids: list[str]) -> None:
    """Send the claimed ``message_ids`` of ``batch`` in order, :data:`SEND_CHUNK` per
    call; delete the sent rows, and at the first refusal release the rest with the
    error and raise it."""
    uniform, values, timestamp = batch.uniform, batch.values, batch.timestamp
    encoded = sends_encoded(broker)
    sent = 0
    try:
        for start in range(0, len(message_ids), SEND_CHUNK):
            chunk = message_ids[start:start + SEND_CHUNK]
            if encoded:
                bodies = [(redis_id, uniform.body(values[message_id], message_id, timestamp,
                                                  redis_id))
                          for message_id, redis_id in zip(chunk, uuid4_texts(len(chunk)),
                                                          strict=True)]
                broker.enqueue_encoded(uniform.queue_name, bodies)  # type: ignore[attr-defined]
            else:
                _enqueue(broker, [(uniform.message(values[message_id], message_id, timestamp),
                                   None) for message_id in chunk])
            sent += len(chunk)
    except Exception as exc:
        _settle(engine, token, message_ids[:sent], str(exc))
        raise
    _settle(engine, token, message_ids, None)


def _settle(engine: Engine, token: str, sent: Sequence[str], error: str | None) -> None:
    """Delete the rows of claim ``token`` that were ``sent``; with ``error``, release
    the others for the relays. Every row of the claim when nothing failed: one
    statement by the claim alone."""
    with session_scope(engine) as session:
        owned = _OUTBOX.c.claimed_by == token
        if error is None:
            session.execute(_OUTBOX.delete().where(owned))
            return
        if sent:
            session.execute(_OUTBOX.delete().where(owned, _OUTBOX.c.message_id.in_(list(sent))))
        session.execute(update(_OUTBOX).where(owned).values(
            claimed_by=None, claimed_until=None, last_error=error[:500]))
