"""``Idempotency-Key``: a repeated ``POST`` gets the first answer, not a second transfer.

The desktop may send a request again when it lost the answer (a timeout, a
dropped connection). With the same ``Idempotency-Key`` header the repeat gets
the first answer's status and body, and nothing is queued again; the same key
with other parameters is a client's mistake, answered 422 naming the header.

Keys are per principal (two offices may use the same key) and kept in the
store (``api_idempotency``, migration 0005), so every server process and a
restart see them. The protocol is reserve, answer, complete:

* :func:`reserve` stores the key with the request before the
  work starts, so of two simultaneous requests with one key only one does it;
  the other is told 409 (still running) and may try again;
* :func:`complete` stores a success's status and body; a refusal or an error
  :func:`release` s the key instead, so a request that failed (an unknown
  listing, the queue down) can be sent again with the same key once mended;
* a key is remembered for :data:`TTL`; a reservation whose request died
  before completing is free again after :data:`STALE_RESERVATION`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from syndication.api.errors import ApiError
from syndication.store.db import session_scope
from syndication.store.models import ApiIdempotencyRow

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
STALE_RESERVATION = timedelta(minutes=5)
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,200}")
"""Printable ASCII without spaces, at most 200 characters (a UUID fits many times)."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The first answer to a key: what a repeat gets."""

    status: int
    body: Any


def canonical(method: str, path: str, body: Any) -> str:
    """The request's method, path and body in canonical JSON: what a repeat must match.
    The bodies are a transfer's scope, a few dozen bytes, so they are kept whole."""
    return json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))


def check_key(key: str) -> str:
    """``key`` when it is a usable header value; else 422 naming the header."""
    if not KEY_PATTERN.fullmatch(key):
        raise ApiError(422, "must be 1 to 200 printable ASCII characters without spaces",
                       record="request header", field=HEADER)
    return key


def reserve(engine: Engine, principal: str, key: str, request: str, now: datetime
            ) -> Replay | None:
    """The first answer when ``key`` was used before with the same request; ``None`` when
    this request is the first (the key is now reserved for it). 422 for a key used with
    another request, 409 while the first is still running."""
    for _ in range(2):
        with session_scope(engine) as session:
            row = session.get(ApiIdempotencyRow, (principal, key))
            if row is not None and _expired(row, now):
                session.delete(row)
                session.flush()
                row = None
            if row is not None:
                if row.request != request:
                    raise ApiError(422, "was used before with other parameters; use a new key "
                                   "for a new request", record="request header", field=HEADER)
                if row.status_code == 0:
                    raise ApiError(409, "the first request with this key is still running; "
                                   "send it again in a moment", record="request header",
                                   field=HEADER)
                return Replay(row.status_code, json.loads(row.body or "null"))
        try:
            with session_scope(engine) as session:
                session.add(ApiIdempotencyRow(principal=principal, key=key,
                                              request=request, created_at=now))
            return None
        except IntegrityError:
            continue
    raise ApiError(409, "the first request with this key is still running; send it again "
                   "in a moment", record="request header", field=HEADER)


def _expired(row: ApiIdempotencyRow, now: datetime) -> bool:
    age = now - row.created_at
    return age > TTL or (row.status_code == 0 and age > STALE_RESERVATION)


def complete(engine: Engine, principal: str, key: str, status: int, body: Any) -> None:
    """Store the answer of the request that reserved ``key``."""
    with session_scope(engine) as session:
        row = session.get(ApiIdempotencyRow, (principal, key))
        if row is not None:
            row.status_code = status
            row.body = json.dumps(body, separators=(",", ":"))
            session.add(row)


def release(engine: Engine, principal: str, key: str) -> None:
    """Forget a reservation whose request was refused or failed."""
    with session_scope(engine) as session:
        session.execute(delete(ApiIdempotencyRow).where(
            col(ApiIdempotencyRow.principal) == principal, col(ApiIdempotencyRow.key) == key,
            col(ApiIdempotencyRow.status_code) == 0))
