"""The bundled example: ingests with zero errors and covers every branch of R1–R7 and R12."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from syndication import registry
from syndication.ingest import ingest_document
from syndication.records import CATEGORIES, LISTING_STATES, FeedInput
from syndication.rules.final_price import eligibility
from syndication.rules.licence import licensed_marketplaces
from syndication.rules.logo import office_logo
from syndication.rules.object_types import object_type
from syndication.rules.plan import decide
from syndication.rules.portrait import portrait
from syndication.store.db import session_scope
from syndication.store.models import ListingRow
from syndication.store.repository import load_feed_inputs

MARKETPLACES = registry.names()

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "records.json"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FeedInput]]:
    from syndication.store.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('example') / 'store.db'}")
    migrate(engine)
    report = ingest_document(engine, EXAMPLE.read_bytes())
    assert [str(e) for e in report.errors] == []
    with session_scope(engine) as session:
        ids = session.scalars(select(ListingRow.id)).all()
        yield load_feed_inputs(session, ids)
    engine.dispose()


def test_example_ingests_with_zero_errors_on_both_stores(engine: Engine) -> None:
    report = ingest_document(engine, EXAMPLE.read_bytes())
    assert report.ok and len(report.offices) >= 3 and len(report.users) >= 8
    assert len(report.listings) >= 40
    again = ingest_document(engine, EXAMPLE.read_bytes())
    assert again.ok and again.created_listings == []


def test_every_category_and_state(loaded: dict[str, FeedInput]) -> None:
    assert {f.listing.category for f in loaded.values()} == set(CATEGORIES)
    assert {f.listing.state for f in loaded.values()} == set(LISTING_STATES)


def test_r1_r2_r3_decisions(loaded: dict[str, FeedInput]) -> None:
    decisions = {(f.listing.id, m): decide(f, m, None) for f in loaded.values()
                 for m in MARKETPLACES}
    states = {d.state for d in decisions.values()}
    actions = {d.action for d in decisions.values()}
    assert {"not_licensed", "not_selected", None} <= states and "create" in actions
    assert decisions["OBJ-STH-2001", "blocket"].state == "not_licensed"
    assert "never published" in decisions["OBJ-GBG-1018", "hemnet"].reason
    assert "never published" in decisions["OBJ-UPP-3006", "hemnet"].reason
    licensed = licensed_marketplaces(loaded["OBJ-OST-4011"].office)
    assert all(decisions["OBJ-OST-4011", m].state == "not_selected" for m in licensed)


def test_r2_defaults_applied_at_creation(loaded: dict[str, FeedInput]) -> None:
    radhus = loaded["OBJ-GBG-1003"]
    assert radhus.listing.marketplaces == radhus.office.category_defaults["radhus"]
    assert loaded["OBJ-GBG-1009"].listing.marketplaces == ("hemnet",)


def test_r4_farms_with_and_without_farming(loaded: dict[str, FeedInput]) -> None:
    farms = [f.listing for f in loaded.values() if f.listing.category == "lantbruk"]
    codes = {object_type(listing, "hemnet").code for listing in farms}
    assert codes == {"320", "330"}
    orientations = {o for listing in farms for o in listing.orientations}
    assert {"fritid", "hastgard", "ovrig", "jordbruk"} <= orientations


def test_r5_portrait_branches(loaded: dict[str, FeedInput]) -> None:
    brokers = {f.broker.id: f.broker for f in loaded.values() if f.broker}
    assert portrait(brokers["USR-ANNA"]) is not None
    assert portrait(brokers["USR-SARA"]) is None
    assert portrait(brokers["USR-ERIK"]) is None
    assert portrait(brokers["USR-LINNEA"]) is None
    johan = portrait(brokers["USR-JOHAN"])
    assert johan is not None and johan.url.endswith("johan-lindqvist-2026.jpg")
    assert all(b.email for b in brokers.values())


def test_r6_logo_never_to_blocket(loaded: dict[str, FeedInput]) -> None:
    office = loaded["OBJ-GBG-1001"].office
    assert office.logo_url and "blocket" in office.licence
    def logo(name: str) -> str | None:
        return office_logo(office, receives_logo=registry.get(name).receives_logo)

    assert logo("blocket") is None and logo("hemnet")


def test_r7_branches(loaded: dict[str, FeedInput]) -> None:
    sold = {f.listing.id: f for f in loaded.values() if f.listing.state == "sold"}
    reasons = {
        lid: eligibility(f.listing, f.office, f.broker, published_on_hemnet_before_sale=True)
        for lid, f in sold.items()
    }
    eligible = {lid for lid, e in reasons.items() if e.eligible}
    assert {"OBJ-GBG-1011", "OBJ-GBG-1012", "OBJ-GBG-1013", "OBJ-OST-4005"} <= eligible
    text = {lid: " ".join(e.reasons) for lid, e in reasons.items()}
    assert "category 'radhus'" in text["OBJ-GBG-1014"]
    assert "flag is not set" in text["OBJ-GBG-1015"]
    assert "no contract date" in text["OBJ-GBG-1016"]
    assert "main company" in text["OBJ-GBG-1017"]
    assert "agreement" in text["OBJ-STH-2006"]
    assert "'Hemnet – slutpris' is off" in text["OBJ-UPP-3004"]
    assert "category 'lantbruk'" in text["OBJ-OST-4006"]
    assert {f.listing.category for f in sold.values()} == set(CATEGORIES)


def test_r12_some_listings_fail_preconditions(loaded: dict[str, FeedInput]) -> None:
    no_images = loaded["OBJ-GBG-1010"]
    for name in ("hemnet", "blocket", "hittahem"):
        assert any("image" in unmet for unmet in registry.get(name).preconditions(no_images))
    no_price = loaded["OBJ-UPP-3005"]
    assert decide(no_price, "blocket", None).action == "create"
    assert any("price" in unmet for unmet in registry.get("blocket").preconditions(no_price))
    active = [f for f in loaded.values() if f.listing.state in ("coming", "for_sale")]
    passing = [f for f in active if not registry.get("hemnet").preconditions(f)]
    abroad = [f for f in active if f.listing.currency != "SEK"]
    assert len(abroad) == 5
    assert len(passing) >= len(active) - 3 - len(abroad)
    for feed in abroad:
        unmet = registry.get("hemnet").preconditions(feed)
        assert [m for m in unmet if m.startswith("currency:")], feed.listing.id


def test_homes_on_the_spanish_coast_go_to_kyero(loaded: dict[str, FeedInput]) -> None:
    kyero = registry.get("kyero")
    office = loaded["OBJ-SOL-5001"].office
    assert "kyero" in office.licence and "hemnet" in office.licence
    abroad = [f for f in loaded.values() if f.office.id == office.id]
    assert len(abroad) == 5
    assert {f.listing.province for f in abroad} == {"Málaga", "Alicante"}
    for feed in abroad:
        assert feed.listing.country == "ES" and feed.listing.currency == "EUR"
        assert feed.listing.description_en and feed.listing.description
        assert decide(feed, "kyero", None).action == "create"
        assert kyero.preconditions(feed) == []
        assert kyero.build(feed).startswith(b"<?xml")
    assert decide(loaded["OBJ-SOL-5004"], "hemnet", None).action == "create"
    assert decide(loaded["OBJ-SOL-5001"], "hemnet", None).state == "not_selected"


def test_every_publishable_listing_builds_a_valid_document(loaded: dict[str, FeedInput]) -> None:
    built = 0
    for feed in loaded.values():
        for name in MARKETPLACES:
            marketplace = registry.get(name)
            decision = decide(feed, name, None)
            if decision.action == "create" and not marketplace.preconditions(feed):
                assert marketplace.build(feed).startswith(b"<?xml")
                built += 1
    assert built >= 40
