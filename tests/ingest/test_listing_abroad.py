"""Listings abroad in the records: defaults that keep old records valid, the new fields
stored and read back on both stores, bad values refused by field, and migration 0003."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_common
import pytest
from sqlalchemy import Engine, text

from syndication.ingest import ingest_document
from syndication.store.db import alembic_config, make_engine, session_scope
from syndication.store.repository import load_feed_input


def document(*listings: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "offices": [bench_common.office("KTR-SOL", licence=("hemnet", "kyero"))],
            "users": [bench_common.broker("U-MARIA", "KTR-SOL")],
            "listings": list(listings),
        },
        ensure_ascii=False,
    ).encode()


def abroad(listing_id: str = "OBJ-ES-1", seed: int = 5, **changes: Any) -> dict[str, Any]:
    record = bench_common.abroad_listing(listing_id, "KTR-SOL", "U-MARIA", random.Random(seed))
    record.update(changes)
    return record


def test_a_record_without_the_new_fields_is_a_swedish_listing_in_kronor(engine: Engine) -> None:
    old = bench_common.listing("OBJ-SE-1", "KTR-SOL", "U-MARIA", random.Random(1))
    report = ingest_document(engine, document(old))
    assert report.ok, [str(e) for e in report.errors]
    with session_scope(engine) as session:
        feed_input = load_feed_input(session, "OBJ-SE-1")
    assert feed_input is not None
    listing = feed_input.listing
    assert (listing.country, listing.currency) == ("SE", "SEK")
    assert listing.province is None and listing.modified_at is None
    assert listing.bedrooms is None and listing.bathrooms is None and listing.description_en is None


def test_null_country_and_currency_are_the_defaults(engine: Engine) -> None:
    record = abroad(currency=None)
    record["address"]["country"] = None
    assert ingest_document(engine, document(record)).ok
    with session_scope(engine) as session:
        feed_input = load_feed_input(session, "OBJ-ES-1")
    assert feed_input is not None
    assert (feed_input.listing.country, feed_input.listing.currency) == ("SE", "SEK")


def test_the_new_fields_round_trip(engine: Engine) -> None:
    record = abroad(
        bedrooms=3,
        bathrooms=2,
        description_en="Sea views & a pool <3",
        modified_at="2026-11-20T10:15:30+01:00",
    )
    record["address"].update(country="PT", province="Faro")
    assert ingest_document(engine, document(record)).ok
    with session_scope(engine) as session:
        feed_input = load_feed_input(session, "OBJ-ES-1")
    assert feed_input is not None
    listing = feed_input.listing
    assert (listing.country, listing.province, listing.currency) == ("PT", "Faro", "EUR")
    assert (listing.bedrooms, listing.bathrooms) == (3, 2)
    assert listing.description_en == "Sea views & a pool <3"
    assert listing.modified_at == datetime(2026, 11, 20, 9, 15, 30, tzinfo=UTC)

    record["address"]["country"] = "ES"
    record.update(currency="GBP", bedrooms=None)
    assert ingest_document(engine, document(record)).ok
    with session_scope(engine) as session:
        again = load_feed_input(session, "OBJ-ES-1")
    assert again is not None
    assert (again.listing.country, again.listing.currency, again.listing.bedrooms) == (
        "ES",
        "GBP",
        None,
    )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"address.country": "es"}, "address.country", "ISO 3166-1 alpha-2"),
        ({"address.country": "XX"}, "address.country", "ISO 3166-1 alpha-2"),
        ({"address.country": "ESP"}, "address.country", "ISO 3166-1 alpha-2"),
        ({"currency": "eur"}, "currency", "ISO 4217"),
        ({"currency": "EURO"}, "currency", "ISO 4217"),
        ({"currency": 978}, "currency", "ISO 4217"),
        ({"bedrooms": -1}, "bedrooms", "less than the minimum 0"),
        ({"bathrooms": 2.5}, "bathrooms", "must be"),
        ({"address.province": "x" * 101}, "address.province", "too long"),
        ({"description_en": 7}, "description_en", "must be"),
        ({"modified_at": "2026-11-20T10:15:00"}, "modified_at", "date-time"),
        ({"modified_at": "yesterday"}, "modified_at", "date-time"),
    ],
)
def test_a_bad_value_is_refused_naming_the_record_and_field(
    sqlite_engine: Engine, change: dict[str, Any], field: str, words: str
) -> None:
    record = abroad()
    ((key, value),) = change.items()
    if key.startswith("address."):
        record["address"][key.split(".", 1)[1]] = value
    else:
        record[key] = value
    report = ingest_document(sqlite_engine, document(record, abroad("OBJ-ES-2", seed=6)))
    assert report.listings == ["OBJ-ES-2"]
    (error,) = report.errors
    assert error.record == "listing 'OBJ-ES-1'" and error.field == field
    assert words in str(error)


def test_migration_0003_gives_existing_rows_the_swedish_defaults(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO listing (id, office_id, category, orientations, state, price_type, "
                "viewings, marketplaces, send_final_price, updated_at) VALUES ('OLD1', 'K1', "
                "'villa', '[]', 'for_sale', 'asking', '[]', '[]', 0, '2026-11-01 10:00:00')"
            )
        )
    command.upgrade(config, "0003")
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT country, currency, province, bedrooms FROM listing WHERE id = 'OLD1'")
        ).one()
    assert tuple(row) == ("SE", "SEK", None, None)
    command.downgrade(config, "0002")
    with engine.connect() as connection:
        columns = {r[1] for r in connection.execute(text("PRAGMA table_info(listing)"))}
    assert "country" not in columns and "currency" not in columns
    engine.dispose()
