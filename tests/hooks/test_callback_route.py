"""``POST /hooks/{marketplace}`` over real HTTP (R16): the signature, the timestamp, the
replay window, the body, and the state move with the publication check's guards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import factories
import pytest
import requests
import structlog
from http_service import Running, serve_app
from sqlalchemy import Engine, func, select

from syndication.app import create_app
from syndication.hooks import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signed_headers,
)
from syndication.service import ServiceContext
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import CallbackSeenRow, TransferStatusRow
from syndication.store.repository import history, record_status

SECRET = b"hemnet-callback-secret-0123456789"
DIGEST = "ab" * 32
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(engine: Engine, clock: Clock) -> Iterator[Running]:
    with session_scope(engine) as session:
        session.add_all(factories.rows(
            factories.office_record("K1"),
            *(factories.listing_record(lid, office_id="K1", broker_id=None)
              for lid in ("L1", "L2", "L3")),
        ))
    with session_scope(engine) as session:
        for lid in ("L1", "L2"):
            record_status(session, lid, "hemnet", "sent", action="create",
                          marketplace_id=None, document_hash=DIGEST, request_id="r1",
                          at=NOW - timedelta(minutes=1))
        record_status(session, "L3", "hemnet", "published", action="create",
                      marketplace_id="H-3", document_hash=DIGEST, at=NOW)
    context = ServiceContext(settings=Settings(), engine=engine, contacts={},
                             secret_key="s" * 40, clock=clock,
                             callback_secrets={"hemnet": SECRET})
    with serve_app(create_app(context)) as running:
        yield running


def body(listing_id: str = "L1", **fields: Any) -> bytes:
    payload = {"listing_id": listing_id, "outcome": "published", "marketplace_id": "H-1",
               "public_url": "https://hemnet.example/H-1", "document_sha256": DIGEST, **fields}
    return json.dumps(payload).encode()


def post(service: Running, data: bytes, callback_id: str = "cb-1", *, secret: bytes = SECRET,
         at: datetime = NOW, marketplace: str = "hemnet",
         headers: dict[str, str] | None = None) -> requests.Response:
    sent = signed_headers(secret, data, callback_id, at) if headers is None else headers
    return requests.post(f"{service.base}/hooks/{marketplace}", data=data, headers=sent,
                         timeout=10, allow_redirects=False)


def state(engine: Engine, listing_id: str) -> TransferStatusRow:
    with session_scope(engine) as session:
        row = session.get(TransferStatusRow, (listing_id, "hemnet"))
        assert row is not None
        session.expunge(row)
        return row


def test_a_signed_callback_publishes_the_sent_pair(service: Running, engine: Engine) -> None:
    answer = post(service, body())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"listing_id": "L1", "marketplace": "hemnet", "state": "published"}
    row = state(engine, "L1")
    assert (row.state, row.marketplace_id, row.public_url) == (
        "published", "H-1", "https://hemnet.example/H-1")
    with session_scope(engine) as session:
        events = history(session, "L1", "hemnet")
    assert [(e.state, e.marketplace_id, e.request_id) for e in events][-1] == (
        "published", "H-1", "r1")


def test_failed_after_manual_review_keeps_the_marketplaces_reason(
    service: Running, engine: Engine
) -> None:
    data = json.dumps({"listing_id": "L2", "outcome": "failed", "document_sha256": DIGEST,
                       "reason": "the images show another property"}).encode()
    assert post(service, data).status_code == 200
    row = state(engine, "L2")
    assert row.state == "failed"
    assert row.error == "Hemnet after manual review: the images show another property"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"secret": b"another-secret-of-enough-length"}, 401, "signature does not match"),
        ({"at": NOW - timedelta(minutes=6)}, 401, "timestamp is 360 s from now"),
        ({"at": NOW + timedelta(minutes=6)}, 401, "timestamp is 360 s from now"),
        ({"headers": {"Content-Type": "application/json"}}, 401, "needs the headers"),
        ({"marketplace": "blocket"}, 404, "takes no callbacks"),
    ],
)
def test_a_callback_that_is_not_trusted_changes_nothing(
    service: Running, engine: Engine, change: dict[str, Any], status: int, words: str
) -> None:
    answer = post(service, body(), **change)
    assert answer.status_code == status and words in answer.json()["error"], answer.text
    assert state(engine, "L1").state == "sent"


def test_a_signature_over_another_body_or_timestamp_is_refused(
    service: Running, engine: Engine
) -> None:
    headers = signed_headers(SECRET, body(), "cb-9", NOW)
    assert post(service, body(marketplace_id="H-666"), headers=headers).status_code == 401
    later = {**headers, TIMESTAMP_HEADER: str(int(NOW.timestamp()) + 1)}
    assert post(service, body(), headers=later).status_code == 401
    last = headers[SIGNATURE_HEADER][-1]
    tampered = {**headers, SIGNATURE_HEADER: headers[SIGNATURE_HEADER][:-1]
                + ("1" if last == "0" else "0")}
    assert post(service, body(), headers=tampered).status_code == 401
    assert post(service, body(), headers={**headers, ID_HEADER: ""}).status_code == 401
    assert state(engine, "L1").state == "sent"
    assert post(service, body(), headers=headers).status_code == 200


def test_a_replayed_callback_id_is_refused(service: Running, engine: Engine,
                                           clock: Clock) -> None:
    assert post(service, body("L1"), "cb-7").status_code == 200
    clock.now = NOW + timedelta(seconds=30)
    again = post(service, body("L2"), "cb-7", at=clock.now)
    assert again.status_code == 409 and "already received" in again.json()["error"]
    assert state(engine, "L2").state == "sent"


def test_seen_ids_are_pruned_once_their_timestamp_would_be_refused_anyway(
    service: Running, engine: Engine, clock: Clock
) -> None:
    assert post(service, body("L1"), "cb-old").status_code == 200
    clock.now = NOW + timedelta(minutes=11)
    assert post(service, body("L2"), "cb-new", at=clock.now).status_code == 200
    with session_scope(engine) as session:
        ids = set(session.scalars(select(CallbackSeenRow.callback_id)))
    assert ids == {"cb-new"}


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (body("NOPE"), 404, "no transfer of listing 'NOPE' to Hemnet"),
        (body("L3"), 409, "is 'published', not 'sent': nothing changed"),
        (body("L1", document_sha256="cd" * 32), 409, "another document"),
        (body("L1", outcome="gone"), 400, "field 'outcome'"),
        (body("L1", marketplace_id=None), 400, "field 'marketplace_id'"),
        (body("L1", document_sha256="xyz"), 400, "field 'document_sha256'"),
        (b"not json", 400, "not JSON"),
        (json.dumps({"listing_id": "L1", "outcome": "failed",
                     "document_sha256": DIGEST}).encode(), 400, "field 'reason'"),
    ],
)
def test_a_callback_that_cannot_move_its_pair_says_why_and_does_nothing(
    service: Running, engine: Engine, data: bytes, status: int, words: str
) -> None:
    with session_scope(engine) as session:
        before = session.scalar(select(func.count()).select_from(TransferStatusRow))
    answer = post(service, data)
    assert answer.status_code == status and words in answer.json()["error"], answer.text
    assert state(engine, "L1").state == "sent"
    assert state(engine, "L3").state == "published"
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(TransferStatusRow)) == before


def test_no_secret_or_signature_reaches_the_log(service: Running) -> None:
    with structlog.testing.capture_logs() as logs:
        post(service, body(), "cb-log")
        post(service, body(), "cb-log2", secret=b"wrong-secret-of-some-length")
    text = repr(logs)
    assert "callback_taken" in text and "callback_refused" in text
    assert SECRET.decode() not in text and "sha256=" not in text
