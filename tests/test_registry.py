"""The registry is the one source of marketplace facts: every other list agrees with it.

Each test here names one place that lists marketplaces, or one fact a
registry entry carries, and fails when it disagrees with
``syndication/registry.py``. Adding a marketplace to the registry alone must
make these pass or say exactly what else it needs.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import tomllib
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import bench_common
import pytest
from sqlalchemy import Engine

import feeds
import schemas
from adapters.config import TRANSPORTS, default_contacts
from adapters.sandbox import Sandbox
from syndication import records, registry
from syndication.errors import UnknownMarketplace
from syndication.ingest import ingest_document, schema
from syndication.records import CATEGORIES, FeedInput, Listing, ListingImage, Office
from syndication.rules.object_types import object_type

ROOT = Path(__file__).resolve().parents[1]
NAMES = registry.names()


def test_names_are_unique_and_each_entry_is_found_by_its_name() -> None:
    assert len(set(NAMES)) == len(NAMES) == len(registry.entries())
    for entry in registry.entries():
        assert registry.get(entry.name) is entry
        assert entry.title and entry.contacts.name


def test_an_unknown_name_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(UnknownMarketplace, match="known: " + ", ".join(NAMES)):
        registry.get("boneo")
    with pytest.raises(UnknownMarketplace, match="boneo"):
        registry.ordered(["hemnet", "boneo"])


@pytest.mark.parametrize("name", NAMES)
def test_each_entry_has_its_schema_and_type_codes(name: str) -> None:
    entry = registry.get(name)
    assert (Path(schemas.__file__).parent / entry.schema).is_file()
    for category in CATEGORIES:
        listing = Listing(id="O1", office_id="K1", category=category, state="for_sale")
        assert object_type(listing, name).code


def test_the_type_code_table_has_exactly_the_registered_marketplaces() -> None:
    text = resources.files("syndication").joinpath("data/object_types.toml").read_text("utf-8")
    tables = set(tomllib.loads(text)) - {"orientations"}
    assert tables == set(NAMES)


def test_the_image_category_tables_name_registered_marketplaces() -> None:
    text = resources.files("syndication").joinpath("data/image_categories.toml").read_text("utf-8")
    tables = set(tomllib.loads(text)) - {"tags"}
    assert tables and tables <= set(NAMES)


def test_the_input_schema_takes_its_enum_from_the_registry() -> None:
    """The file itself lists no names (it would drift); the loaded schema has the registry's."""
    raw = json.loads((Path(schemas.__file__).parent / "records.schema.json").read_text("utf-8"))
    assert "enum" not in raw["$defs"]["marketplace"]
    assert schema()["$defs"]["marketplace"]["enum"] == list(NAMES)
    text = json.dumps(raw)
    for name in NAMES:
        assert f'"{name}"' not in text, f"{name} is named in the input schema outside the registry"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"offices": [{"id": "K1", "name": "K", "licence": ["hemnet", "boneo"]}]}, "licence[1]"),
        (
            {"offices": [{"id": "K1", "name": "K", "category_defaults": {"villa": ["boneo"]}}]},
            "category_defaults.villa[0]",
        ),
        (
            {
                "offices": [{"id": "K1", "name": "K"}],
                "listings": [{"id": "O1", "office_id": "K1", "category": "villa",
                              "state": "for_sale", "marketplaces": ["boneo"]}],
            },
            "marketplaces[0]",
        ),
    ],
)
def test_an_unknown_marketplace_in_input_is_rejected_never_dropped(
    sqlite_engine: Engine, record: dict[str, object], field: str
) -> None:
    report = ingest_document(sqlite_engine, json.dumps(record).encode())
    assert report.rejected == 1
    assert [e.field for e in report.errors] == [field]
    assert "'boneo' is not one of" in str(report.errors[0])


def test_contacts_and_transport_kinds_come_from_the_entries() -> None:
    assert default_contacts() == {e.name: e.contacts for e in registry.entries()}
    for entry in registry.entries():
        assert entry.transports and set(entry.transports) <= set(TRANSPORTS)


def test_the_sandbox_and_the_bench_serve_the_http_marketplaces() -> None:
    http = registry.names(transport="http")
    assert tuple(Sandbox().marketplaces) == http
    assert tuple(bench_common.MARKETPLACES) == http
    assert set(http) <= set(NAMES)


def test_records_define_no_marketplace_list_of_their_own() -> None:
    assert not hasattr(records, "MARKETPLACES")


def test_no_feed_module_imports_the_registry() -> None:
    """The registry imports the feed modules; the other way round would be a cycle."""
    for path in Path(feeds.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
        assert not {"syndication.registry", "syndication"} & imported, path.name


@pytest.mark.parametrize("name", registry.names())
def test_the_logo_goes_exactly_where_the_entry_says(name: str) -> None:
    """R6 applied from the entry: a logo in the document if and only if ``receives_logo``."""
    entry = registry.get(name)
    office = Office(id="K1", name="Kontoret", licence=NAMES,
                    logo_url="https://media.example.se/logo-k1.png")
    listing = Listing(
        id="O1", office_id="K1", category="villa", state="for_sale", street="Storgatan 1",
        postal_code="11122", city="Stockholm", municipality="Stockholm", price=1_000_000,
        living_area=100.0, rooms=4.0, description="Ett hus.",
        images=(ListingImage(url="https://media.example.se/1.jpg"),),
    )
    if entry.name == "kyero":
        listing = dataclasses.replace(
            listing, city="Marbella", province="Málaga", country="ES", currency="EUR",
            modified_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
        )
    feed_input = FeedInput(listing, office)
    assert entry.preconditions(feed_input) == []
    carries = b"logo-k1.png" in entry.build(feed_input)
    assert carries is entry.receives_logo
