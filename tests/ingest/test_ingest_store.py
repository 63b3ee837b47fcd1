"""Ingest into a real store (SQLite and PostgreSQL): upsert, R2 selection, images, nothing lost."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import factories
import pytest
from factories import listing, user
from sqlalchemy import Engine, func, select

from syndication.ingest import BATCH_PARAMETERS, ingest_document
from syndication.store.db import session_scope
from syndication.store.models import ListingImageRow, ListingRow, OfficeRow, UserRow
from syndication.store.repository import load_feed_input

office = partial(
    factories.office,
    licence=["hemnet", "blocket"],
    category_defaults={"villa": ["hemnet", "blocket"], "tomt": ["hemnet"]},
)
"""The factory's office, licensed for Hemnet and Blocket only; villas default to both,
plots to Hemnet, every other category to nothing."""


def ingest(engine: Engine, **document: Any) -> Any:
    return ingest_document(engine, json.dumps(document).encode())


def stored_listing(engine: Engine, lid: str) -> Any:
    with session_scope(engine) as session:
        return load_feed_input(session, lid)


def test_upsert_creates_then_updates_by_id(engine: Engine) -> None:
    first = ingest(engine, offices=[office()], users=[user()], listings=[listing()])
    assert first.ok and first.created_listings == ["O1"]
    second = ingest(engine, listings=[listing(price=3_500_000, headline="Sänkt pris")])
    assert second.ok and second.listings == ["O1"] and second.created_listings == []
    feed = stored_listing(engine, "O1")
    assert feed.listing.price == 3_500_000 and feed.listing.headline == "Sänkt pris"
    assert feed.broker.email == "karin@example.se" and feed.office.licence == ("hemnet", "blocket")
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(ListingRow)) == 1


def test_new_listing_without_selection_gets_office_defaults_for_its_category(
    engine: Engine,
) -> None:
    ingest(engine, offices=[office()], users=[user()],
           listings=[listing("V1"), listing("T1", category="tomt"),
                     listing("B1", category="bostadsratt"),
                     listing("E1", marketplaces=["hittahem"])])
    assert stored_listing(engine, "V1").listing.marketplaces == ("hemnet", "blocket")
    assert stored_listing(engine, "T1").listing.marketplaces == ("hemnet",)
    assert stored_listing(engine, "B1").listing.marketplaces == ()
    assert stored_listing(engine, "E1").listing.marketplaces == ("hittahem",)


def test_existing_listing_keeps_selection_and_defaults_changes_do_not_reach_it(
    engine: Engine,
) -> None:
    ingest(engine, offices=[office()], users=[user()], listings=[listing()])
    changed = office(category_defaults={"villa": ["hittahem"]})
    ingest(engine, offices=[changed], listings=[listing(price=1), listing("O2")])
    assert stored_listing(engine, "O1").listing.marketplaces == ("hemnet", "blocket")
    assert stored_listing(engine, "O2").listing.marketplaces == ("hittahem",)
    ingest(engine, listings=[listing(marketplaces=[])])
    assert stored_listing(engine, "O1").listing.marketplaces == ()
    ingest(engine, listings=[listing(marketplaces=None)])
    assert stored_listing(engine, "O1").listing.marketplaces == ()


def test_defaults_of_a_stored_office_apply_to_listings_sent_later(engine: Engine) -> None:
    ingest(engine, offices=[office()], users=[user()])
    ingest(engine, listings=[listing()])
    assert stored_listing(engine, "O1").listing.marketplaces == ("hemnet", "blocket")


def test_desktop_images_replaced_portal_images_kept(engine: Engine) -> None:
    images = [{"url": "https://bild.example.se/1.jpg", "caption": "Fasad", "order": 1},
              {"url": "https://bild.example.se/2.jpg", "caption": "Kök", "order": 0}]
    ingest(engine, offices=[office()], users=[user()], listings=[listing(images=images)])
    with session_scope(engine) as session:
        session.add(ListingImageRow(listing_id="O1", url="file:///media/p.jpg", position=5,
                                    source="portal", portal_image_id="P-1"))
    ingest(engine, listings=[listing(images=[{"url": "https://bild.example.se/3.jpg"}])])
    got = stored_listing(engine, "O1").listing.images
    assert [(i.url, i.source) for i in got] == [
        ("https://bild.example.se/3.jpg", "desktop"), ("file:///media/p.jpg", "portal")]


def test_user_password_survives_an_upsert(engine: Engine) -> None:
    ingest(engine, offices=[office()], users=[user()])
    with session_scope(engine) as session:
        row = session.get(UserRow, "U1")
        row.password_hash, row.password_legacy = "$argon2id$fake", True
    ingest(engine, users=[user(name="Karin Lind-Berg")])
    with session_scope(engine) as session:
        row = session.get(UserRow, "U1")
        assert (row.name, row.password_hash, row.password_legacy) == (
            "Karin Lind-Berg", "$argon2id$fake", True)


def test_bad_records_rejected_good_ones_taken_and_nothing_stored_is_lost(engine: Engine) -> None:
    ingest(engine, offices=[office()], users=[user()], listings=[listing(price=2_000_000)])
    report = ingest(engine, listings=[listing(price="två miljoner"), listing("O2"),
                                      listing("O3", office_id="K9"), listing("O4", broker_id="U9")])
    assert report.listings == ["O2"] and report.rejected == 3
    messages = [str(e) for e in report.errors]
    assert "listing 'O1': field 'price': must be a whole number or null, not a string" in messages
    missing = "is not in the document or the store"
    assert f"listing 'O3': field 'office_id': office 'K9' {missing}" in messages
    assert f"listing 'O4': field 'broker_id': broker 'U9' {missing}" in messages
    assert stored_listing(engine, "O1").listing.price == 2_000_000
    assert stored_listing(engine, "O3") is None


def test_reference_to_an_office_rejected_in_the_same_document(engine: Engine) -> None:
    report = ingest(engine, offices=[office(licence=["myspace"])], users=[user()])
    assert report.rejected == 2 and report.offices == [] and report.users == []
    assert str(report.errors[-1]) == (
        "user 'U1': field 'office_id': office 'K1' was rejected in this document and is not stored")
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(OfficeRow)) == 0


def test_duplicate_ids_take_the_first(engine: Engine) -> None:
    report = ingest(engine, offices=[office()], users=[user()],
                    listings=[listing(price=1), listing(price=2)])
    assert report.rejected == 1 and "appears twice" in str(report.errors[0])
    assert stored_listing(engine, "O1").listing.price == 1


@pytest.mark.parametrize("count", [BATCH_PARAMETERS // 30 * 2 + 7])
def test_many_listings_in_batches(engine: Engine, count: int) -> None:
    listings = [listing(f"O{n}", images=[{"url": f"https://b.example.se/{n}.jpg"}])
                for n in range(count)]
    report = ingest(engine, offices=[office()], users=[user()], listings=listings)
    assert report.ok and len(report.created_listings) == count
    report = ingest(engine, listings=listings)
    assert report.ok and report.created_listings == []
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(ListingRow)) == count
        assert session.scalar(select(func.count()).select_from(ListingImageRow)) == count


def test_every_field_round_trips(engine: Engine) -> None:
    full_office = office(
        company_id="C1", final_price_enabled=True, hemnet_final_price_agreement=True,
        logo_url="https://cdn.example.se/logo.png",
        address={"street": "Storgatan 1", "postal_code": "411 38", "city": "Göteborg"},
        contacts={"phone": "031-10 20 30", "email": "info@example.se",
                  "website": "https://example.se"})
    full_user = user(phone="070-123 45 67", title="Reg. fastighetsmäklare", show_on_internet=True,
                     images=[{"url": "https://b.example.se/u.jpg", "category": "portratt",
                              "to_internet": True, "order": 2}],
                     companies=["C1", "C2"], main_company="C1", statistics_all_companies=True)
    full_listing = listing(
        system_id="SYS-1", company_id="C2", category="lantbruk", orientations=["hastgard"],
        state="sold", price_type="accepted", living_area=142.5, plot_area=250000, rooms=6,
        monthly_fee=None, build_year=1912, headline="Hästgård", short_description="Kort",
        description="Lång\ntext", final_price=4_100_000, contract_date="2026-10-01",
        send_final_price=True,
        address={"street": "Byvägen 3", "postal_code": "27391", "city": "Tomelilla",
                 "municipality": "Tomelilla", "area": "Österlen", "latitude": 55.54,
                 "longitude": 13.95},
        images=[{"url": "https://b.example.se/1.jpg", "caption": "Stall", "tag": "exterior",
                 "order": 0}],
        viewings=[{"starts_at": "2026-11-28T13:00:00+01:00", "ends_at": "2026-11-28T14:00:00Z",
                   "note": "Ring först"}])
    assert ingest(engine, offices=[full_office], users=[full_user], listings=[full_listing]).ok
    feed = stored_listing(engine, "O1")
    o, u, li = feed.office, feed.broker, feed.listing
    assert (o.company_id, o.final_price_enabled, o.hemnet_final_price_agreement, o.logo_url,
            o.street, o.postal_code, o.city, o.phone, o.email, o.website) == (
        "C1", True, True, "https://cdn.example.se/logo.png", "Storgatan 1", "411 38",
        "Göteborg", "031-10 20 30", "info@example.se", "https://example.se")
    assert (u.phone, u.title, u.show_on_internet, u.companies, u.main_company,
            u.statistics_all_companies) == ("070-123 45 67", "Reg. fastighetsmäklare", True,
                                            ("C1", "C2"), "C1", True)
    assert u.images[0].category == "portratt" and u.images[0].to_internet and u.images[0].order == 2
    assert (li.system_id, li.company_id, li.orientations, li.state, li.price_type, li.living_area,
            li.plot_area, li.rooms, li.build_year, li.final_price, str(li.contract_date),
            li.send_final_price, li.municipality, li.area, li.latitude) == (
        "SYS-1", "C2", ("hastgard",), "sold", "accepted", 142.5, 250000, 6, 1912, 4_100_000,
        "2026-10-01", True, "Tomelilla", "Österlen", 55.54)
    assert li.images[0].tag == "exterior" and li.images[0].caption == "Stall"
    assert li.viewings[0].note == "Ring först" and li.viewings[0].ends_at.utcoffset().seconds == 0
    assert li.description == "Lång\ntext"


def test_ingest_logs_through_the_logging_set_up_after_import(sqlite_engine: Engine) -> None:
    """The ingest module is imported before the CLI sets up logging; its lines must
    still take the configured level, format and redaction."""
    import io

    from syndication.logs import configure

    quiet, loud = io.StringIO(), io.StringIO()
    configure("ERROR", stream=quiet)
    ingest(sqlite_engine, offices=[office()], users=[user()], listings=[listing()])
    configure("INFO", fmt="json", stream=loud)
    ingest(sqlite_engine, offices=[office()], users=[user()], listings=[listing()])
    assert quiet.getvalue() == ""
    line = json.loads(loud.getvalue().strip().splitlines()[-1])
    assert line["event"] == "ingested" and line["component"] == "ingest"
    assert line["listings"] == 1 and line["level"] == "info"
