"""The view's final-price page over real HTTP: every sold listing of the office with its
outcome and the rule that stopped it (R7), the same judgement as the command's report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import factories
import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from web_server import Served, login, serve

from adapters.filedrop import local_id
from syndication.rules import final_price as r7
from syndication.store.models import OfficeRow
from syndication.store.repository import record_status

SOLD = {"office_id": "OFF1", "broker_id": None, "state": "sold", "final_price": 3_100_000,
        "contract_date": date(2026, 10, 3), "send_final_price": True}


@pytest.fixture
def served(seeded: Engine) -> Iterator[Served]:
    with Session(seeded) as session:
        office = session.get(OfficeRow, "OFF1")
        assert office is not None
        office.final_price_enabled = office.hemnet_final_price_agreement = True
        session.add_all(factories.rows(
            factories.listing_record("S-OK", **SOLD),
            factories.listing_record("S-NOCONSENT", **{**SOLD, "send_final_price": False}),
            factories.listing_record("S-EARLY", **SOLD),
            factories.listing_record("S-DROP", **SOLD),
        ))
        session.flush()
        at = datetime(2026, 9, 1, tzinfo=UTC)
        for listing_id in ("S-OK", "S-NOCONSENT"):
            record_status(session, listing_id, "hemnet", "published", action="create",
                          marketplace_id=f"H-{listing_id}", at=at)
        record_status(session, "S-DROP", "hemnet", "sent", action="create",
                      marketplace_id=local_id("hemnet", "S-DROP"), at=at)
        session.commit()
    with serve(seeded) as running:
        yield running


def test_the_page_explains_every_sold_listing(served: Served) -> None:
    http, answer = login(served)
    assert answer.status_code == 302
    office = http.get(served.url("/offices/OFF1"), timeout=10)
    assert 'href="/offices/OFF1/slutpriser"' in office.text
    page = http.get(served.url("/offices/OFF1/slutpriser"), timeout=10)
    assert page.status_code == 200
    rows = dict(re.findall(r'data-object="([^"]+)" data-outcome="([^"]+)"', page.text))
    assert rows == {"S-OK": "send", "S-NOCONSENT": "skipped", "S-EARLY": "skipped",
                    "S-DROP": "skipped"}
    text = page.text.replace("&#39;", "'")
    english = http.get(served.url("/offices/OFF1/slutpriser"), timeout=10,
                       headers={"Accept-Language": "en"}).text.replace("&#39;", "'")
    assert r7.FLAG_NOT_SET in english
    assert english.count(r7.NOT_PUBLISHED_BEFORE_SALE) == 2
    assert "säljare och köpare har inte samtyckt" in text
    assert text.count("såld innan den publicerades på Hemnet") == 2
    assert "Skickas i natt" in text and "Skickas inte" in text
