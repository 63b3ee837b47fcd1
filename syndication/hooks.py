"""Marketplace callbacks (R16): ``POST /hooks/{marketplace}`` moves a ``sent`` pair on.

A marketplace that publishes with a delay may call back instead of waiting to be
polled. The wire format is in ``docs/wire-protocol.md``; in short, three headers
(:data:`SIGNATURE_HEADER`, :data:`TIMESTAMP_HEADER`, :data:`ID_HEADER`) and a JSON body
naming the listing, the document it is about and the outcome.

What a callback must pass, in this order, each refusal answered with its reason and
nothing changed:

===================================  ======  =========================================
check                                status  why
===================================  ======  =========================================
marketplace takes callbacks          404     no secret configured: nothing to verify
headers present, well formed         401     a callback is signed or it is not one
signature (constant-time compare)    401     HMAC-SHA256(secret, timestamp "." body)
timestamp within :data:`MAX_SKEW`    401     an old message replayed after pruning
body fields                          400     names the field
callback id not seen before          409     a replay inside the window
pair known                           404     unknown listing, or never sent there
pair ``sent`` with that document     409     the same guard as the publication check:
                                             a newer document, a delete or a settled
                                             state is never moved backwards
===================================  ======  =========================================

Only then is the pair ``published`` (with the marketplace's id and public address) or
``failed`` (with the marketplace's reason after its manual review), in the same
transaction as the callback id, through :func:`~syndication.store.repository.record_status`
(so the history has the event). The secret, the signature and the body never reach a
log. Polling (:func:`syndication.transfer.confirm_publication`) stays the fallback: a
lost callback is settled by the next check, and a check that finds the pair already
published stops without calling the marketplace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from syndication.logs import get_logger
from syndication.registry import title
from syndication.service import ServiceContext
from syndication.store.models import CallbackSeenRow, TransferStatusRow
from syndication.store.repository import record_status
from syndication.transfer.common import lock_status_row

SIGNATURE_HEADER = "X-Callback-Signature"
TIMESTAMP_HEADER = "X-Callback-Timestamp"
ID_HEADER = "X-Callback-Id"
MAX_SKEW = timedelta(minutes=5)
"""How far a callback's timestamp may be from the service's clock, either way."""
MAX_ID = 128
MAX_FIELD = 2000
OUTCOMES = ("published", "failed")


class Refused(Exception):
    """A callback refused: the HTTP status and the reason the marketplace is told."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Replayed(Refused):
    """A callback id already taken: nothing of this request may be stored."""


@dataclass(frozen=True, slots=True)
class Callback:
    """A callback's body, checked."""

    listing_id: str
    outcome: str
    document_sha256: str
    marketplace_id: str | None = None
    public_url: str | None = None
    reason: str | None = None


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 under ``secret`` of ``timestamp + "." + body``."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: bytes, body: bytes, callback_id: str, now: datetime) -> dict[str, str]:
    """The headers a marketplace sends with ``body`` (the sandbox and tests use it)."""
    timestamp = str(int(now.timestamp()))
    return {SIGNATURE_HEADER: signature(secret, timestamp, body), TIMESTAMP_HEADER: timestamp,
            ID_HEADER: callback_id, "Content-Type": "application/json"}


def verify(secret: bytes, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """The callback id once the signature and the timestamp hold; else :class:`Refused`."""
    sent, timestamp, callback_id = (headers.get(h) for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER,
                                                             ID_HEADER))
    if not sent or not timestamp or not callback_id:
        raise Refused(401, f"a callback needs the headers {SIGNATURE_HEADER}, "
                           f"{TIMESTAMP_HEADER} and {ID_HEADER}")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(401, f"{TIMESTAMP_HEADER} must be whole seconds since 1970 (UTC)")
    if not hmac.compare_digest(sent.encode(), signature(secret, timestamp, body).encode()):
        raise Refused(401, "the signature does not match the body and timestamp")
    skew = abs(now.timestamp() - int(timestamp))
    if skew > MAX_SKEW.total_seconds():
        raise Refused(401, f"the timestamp is {skew:.0f} s from now; at most "
                           f"{MAX_SKEW.total_seconds():.0f} s are accepted")
    if len(callback_id) > MAX_ID or not callback_id.isprintable():
        raise Refused(401, f"{ID_HEADER} must be printable, at most {MAX_ID} characters")
    return callback_id


def _text(data: Mapping[str, Any], key: str, *, required: bool,
          limit: int = MAX_FIELD) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, f"field {key!r}: a non-empty string is required")
    if len(value) > limit or "\x00" in value:
        raise Refused(400, f"field {key!r}: at most {limit} characters, no NUL byte")
    return value


def parse(body: bytes) -> Callback:
    """The checked body; a refusal names the field."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body must be a JSON object")
    outcome = _text(data, "outcome", required=True)
    if outcome not in OUTCOMES:
        raise Refused(400, f"field 'outcome': must be one of {', '.join(OUTCOMES)}")
    digest = _text(data, "document_sha256", required=True, limit=64)
    assert digest is not None
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise Refused(400, "field 'document_sha256': the SHA-256 of the document, 64 hex digits")
    listing_id = _text(data, "listing_id", required=True, limit=64)
    assert listing_id is not None
    return Callback(
        listing_id=listing_id, outcome=outcome, document_sha256=digest,
        marketplace_id=_text(data, "marketplace_id", required=outcome == "published", limit=128),
        public_url=_text(data, "public_url", required=False),
        reason=_text(data, "reason", required=outcome == "failed"),
    )


def apply(session: Session, marketplace: str, callback_id: str, callback: Callback,
          now: datetime) -> str:
    """Take the callback id and move the pair, in the caller's transaction; the new state.

    The id is kept even when the pair is refused, so a replay of it is refused as one.
    """
    session.execute(delete(CallbackSeenRow).where(
        col(CallbackSeenRow.received_at) < now - 2 * MAX_SKEW))
    session.add(CallbackSeenRow(marketplace=marketplace, callback_id=callback_id,
                                received_at=now))
    try:
        session.flush()
    except IntegrityError:
        raise Replayed(409, f"callback id {callback_id!r} was already received") from None
    lock_status_row(session, callback.listing_id, marketplace)
    row = session.get(TransferStatusRow, (callback.listing_id, marketplace))
    name = title(marketplace)
    if row is None:
        raise Refused(404, f"no transfer of listing {callback.listing_id!r} to {name}")
    if row.state != "sent":
        raise Refused(409, f"listing {callback.listing_id!r} on {name} is {row.state!r}, "
                           "not 'sent': nothing changed")
    if row.document_hash != callback.document_sha256:
        raise Refused(409, f"listing {callback.listing_id!r} on {name}: the callback is about "
                           "another document than the one last sent: nothing changed")
    if callback.outcome == "published":
        fields: dict[str, Any] = {"marketplace_id": callback.marketplace_id}
        if callback.public_url:
            fields["public_url"] = callback.public_url
        record_status(session, callback.listing_id, marketplace, "published",
                      request_id=row.request_id, at=now, **fields)
    else:
        record_status(session, callback.listing_id, marketplace, "failed",
                      request_id=row.request_id, at=now,
                      error=f"{name} after manual review: {callback.reason}")
    return callback.outcome


def handle(context: ServiceContext, marketplace: str, headers: Mapping[str, str],
           body: bytes) -> tuple[int, dict[str, Any]]:
    """One callback, from the raw request to the answer (status, JSON body)."""
    log = get_logger(marketplace=marketplace[:32])
    secret = context.callback_secrets.get(marketplace)
    try:
        if secret is None:
            raise Refused(404, f"marketplace {marketplace[:32]!r} takes no callbacks here")
        now = context.clock()
        callback_id = verify(secret, headers, body, now)
        callback = parse(body)
        log = log.bind(callback_id=callback_id, listing_id=callback.listing_id)
        with Session(context.engine) as session:
            try:
                state = apply(session, marketplace, callback_id, callback, now)
            except Replayed:
                raise
            except Refused:
                session.commit()
                raise
            session.commit()
    except Refused as refused:
        log.info("callback_refused", status=refused.status, reason=refused.reason)
        return refused.status, {"error": refused.reason}
    log.info("callback_taken", state=state)
    return 200, {"listing_id": callback.listing_id, "marketplace": marketplace, "state": state}


def build_router(context: ServiceContext) -> APIRouter:
    """The ``/hooks/{marketplace}`` route (kept out of the API's OpenAPI document)."""
    router = APIRouter(include_in_schema=False)

    async def hook(marketplace: str, request: Request) -> JSONResponse:
        body = await request.body()
        status, answer = await run_in_threadpool(handle, context, marketplace,
                                                 request.headers, body)
        return JSONResponse(answer, status_code=status)

    router.add_api_route("/hooks/{marketplace}", hook, methods=["POST"])
    return router
