"""The one factory: its input records and its plain records come from the same defaults."""

from __future__ import annotations

import json
import random

import factories
from sqlalchemy import Engine

from syndication import registry
from syndication.ingest import ingest_document
from syndication.store.db import session_scope
from syndication.store.repository import load_feed_input


def test_the_default_records_are_what_the_store_holds_after_ingesting_them(
    sqlite_engine: Engine,
) -> None:
    report = ingest_document(sqlite_engine, json.dumps(factories.document()).encode())
    assert report.ok, report.errors
    with session_scope(sqlite_engine) as session:
        stored = load_feed_input(session, factories.LISTING_ID)
    assert stored == factories.feed_input()


def test_rows_of_the_default_records_load_back_as_those_records(sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as session:
        session.add_all(factories.rows(factories.office_record(), factories.user_record(),
                                       factories.listing_record()))
    with session_scope(sqlite_engine) as session:
        stored = load_feed_input(session, factories.LISTING_ID)
    assert stored == factories.feed_input()


def test_the_default_listing_meets_every_marketplaces_preconditions() -> None:
    """The default is a Swedish villa: every marketplace that takes one per listing takes
    it; Kyero (homes abroad, fetched as a feed) needs the abroad fields."""
    for name in registry.push_names():
        assert registry.get(name).preconditions(factories.feed_input()) == [], name


def test_overrides_replace_a_field_and_omit_leaves_it_out() -> None:
    assert factories.listing(price=None)["price"] is None
    assert "broker_id" not in factories.listing(broker_id=factories.OMIT)
    assert "marketplaces" not in factories.listing()
    assert factories.listing_record(category="tomt").marketplaces == ()
    assert factories.listing_record(marketplaces=["hittahem"]).marketplaces == ("hittahem",)
    assert factories.feed_input(broker=None).broker is None


def test_varied_listings_are_the_same_for_a_seed_and_differ_between_seeds() -> None:
    def drawn(seed: int) -> list[dict[str, object]]:
        rng = random.Random(seed)
        return [factories.varied_listing(f"V{n}", rng) for n in range(20)]

    assert drawn(3) == drawn(3)
    assert drawn(3) != drawn(4)
    assert len({str(record["category"]) for record in drawn(3)}) > 1
