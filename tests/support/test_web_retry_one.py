""""Försök igen" and "överför alla misslyckade" transfer a pair to its own marketplace only.

Over real HTTP (:mod:`http_service`), on SQLite and PostgreSQL, with the
service's in-process worker running what the view queues: a press on one
pair leaves the listing's other marketplaces' status rows and histories
exactly as they were, and one transfer per listing at a time still holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from web_server import Served, csrf_of, login, serve, wait_settled

from syndication.store.models import TransferEventRow, TransferRequestRow, TransferStatusRow
from syndication.store.repository import history, record_status


@pytest.fixture
def served(seeded_any: Engine) -> Iterator[Served]:
    """The seeded store with FAIL failed on both its marketplaces."""
    with serve(seeded_any) as running:
        with Session(seeded_any) as session:
            record_status(session, "FAIL", "hittahem", "failed", action="create", attempt=True,
                          error="HittaHem: 400 no image", at=running.clock())
            session.commit()
        yield running


def pair_record(engine: Engine, listing_id: str, marketplace: str) -> tuple[Any, ...]:
    """The pair's status row and every event of its history, as plain values."""
    with Session(engine) as session:
        row = session.get(TransferStatusRow, (listing_id, marketplace))
        assert row is not None
        events = [(e.id, e.state, e.action, e.at, e.request_id, e.error, e.actor)
                  for e in history(session, listing_id, marketplace)]
        return (row.state, row.action, row.updated_at, row.attempts, row.error), events


def retries(engine: Engine) -> list[tuple[str, str, str | None]]:
    with Session(engine) as session:
        return sorted((e.listing_id, e.marketplace, e.actor) for e in session.exec(
            select(TransferEventRow).where(col(TransferEventRow.action) == "retry")))


def press(served: Served, http: requests.Session, listing_id: str,
          marketplace: str) -> requests.Response:
    page = http.get(served.url(f"/listings/{listing_id}"), timeout=10).text
    return http.post(served.url(f"/listings/{listing_id}/retry"),
                     data={"csrf_token": csrf_of(page), "marketplace": marketplace},
                     allow_redirects=False, timeout=10)


def engine_of(served: Served) -> Engine:
    assert served.engine is not None
    return served.engine


def test_try_again_on_one_pair_leaves_the_listings_other_marketplaces_untouched(
        served: Served) -> None:
    engine = engine_of(served)
    other = pair_record(engine, "FAIL", "hittahem")
    http, _ = login(served)
    answer = press(served, http, "FAIL", "hemnet")
    assert answer.headers["Location"] == "/listings/FAIL?done=queued"
    settled = wait_settled(served, http, "FAIL")
    assert settled["hemnet"] != "queued", "the in-process worker ran the press"
    assert pair_record(engine, "FAIL", "hittahem") == other, (
        "HittaHem's row and history are as they were before the press on Hemnet")
    with Session(engine) as session:
        scopes = [r.scope for r in session.exec(select(TransferRequestRow))]
        hemnet_events = history(session, "FAIL", "hemnet")
    assert scopes == ["object:FAIL marketplace:hemnet"]
    assert [e.state for e in hemnet_events if e.request_id][-1] != "queued"
    assert retries(engine) == [("FAIL", "hemnet", "anna")]


def test_one_transfer_per_listing_at_a_time_holds_across_its_marketplaces(
        served: Served) -> None:
    engine = engine_of(served)
    with Session(engine) as session:
        record_status(session, "FAIL", "hemnet", "queued", at=served.clock())
        session.commit()
    http, _ = login(served)
    busy = press(served, http, "FAIL", "hittahem")
    assert busy.headers["Location"] == "/listings/FAIL?done=busy"
    assert retries(engine) == []
    with Session(engine) as session:
        assert not list(session.exec(select(TransferRequestRow))), "a busy press queues nothing"


def test_transfer_all_failed_sends_each_failed_pair_to_its_own_marketplace(
        served: Served) -> None:
    engine = engine_of(served)
    untouched = {pair: pair_record(engine, *pair) for pair in (
        ("NEW", "blocket"), ("PUB", "hittahem"), ("PUB", "hemnet"))}
    http, _ = login(served)
    page = http.get(served.url("/offices/OFF1"), timeout=10).text
    answer = http.post(served.url("/offices/OFF1/retry-failed"),
                       data={"csrf_token": csrf_of(page)}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/offices/OFF1?queued=2"
    assert retries(engine) == [("FAIL", "hemnet", "anna"), ("FAIL", "hittahem", "anna")]
    with Session(engine) as session:
        scopes = sorted(r.scope for r in session.exec(select(TransferRequestRow)))
    assert scopes == ["object:FAIL marketplace:hemnet", "object:FAIL marketplace:hittahem"]
    wait_settled(served, http, "FAIL")
    assert {pair: pair_record(engine, *pair) for pair in untouched} == untouched
    shown = http.get(served.url("/offices/OFF1?queued=2"), timeout=10).text
    assert re.search(r'id="notice"[^>]*>[^<]*2', shown)
