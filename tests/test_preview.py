"""``syndication preview``: the document the next transfer would send, or why none would go."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import factories
import pytest
from factories import listing
from lxml import etree
from sqlalchemy import Engine

from syndication.cli import preview as preview_cli
from syndication.errors import InputError, UnknownMarketplace
from syndication.ingest import ingest_document
from syndication.preview import preview
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.repository import record_status
from syndication.transfer import document_hash

OFFICE = factories.office(licence=["hemnet", "hittahem"],
                          category_defaults={"villa": ["hemnet", "blocket"]})
"""Villas default to Blocket too, which the office is not licensed for."""
BROKER = factories.user()


@pytest.fixture
def store(engine: Engine) -> Engine:
    listings = [
        listing("O1"),
        listing("O2", marketplaces=["hittahem"]),
        listing("O3", state="withdrawn"),
        listing("O4", images=[]),
        listing("O5", state="sold"),
    ]
    document = {"offices": [OFFICE], "users": [BROKER], "listings": listings}
    assert ingest_document(engine, json.dumps(document).encode()).ok
    return engine


def test_create_document_for_a_new_listing(store: Engine) -> None:
    result = preview(store, "O1", "hemnet")
    assert result.action == "create" and result.document is not None
    root = etree.fromstring(result.document)
    assert "O1" in result.document.decode() and root.tag


@pytest.mark.parametrize(
    ("listing_id", "marketplace", "words"),
    [
        ("O1", "blocket", "a licence change is needed"),
        ("O2", "hemnet", "not selected"),
        ("O3", "hemnet", "withdrawn and never published"),
        ("O4", "hemnet", "at least one image"),
        ("O5", "hemnet", "sold and never published"),
    ],
)
def test_nothing_would_be_sent(
    store: Engine, listing_id: str, marketplace: str, words: str
) -> None:
    result = preview(store, listing_id, marketplace)
    assert result.document is None and result.action == "none" and words in result.reason


def test_unchanged_since_last_delivery(store: Engine) -> None:
    document = preview(store, "O1", "hemnet").document
    assert document is not None
    with session_scope(store) as session:
        record_status(session, "O1", "hemnet", "published", action="create",
                      marketplace_id="H-77", document_hash=document_hash(document))
    unchanged = preview(store, "O1", "hemnet")
    assert unchanged.document is None and "unchanged since the last delivery" in unchanged.reason
    ingest_document(store, json.dumps({"listings": [listing("O1", price=2_750_000)]}).encode())
    changed = preview(store, "O1", "hemnet")
    assert changed.action == "update" and b"2750000" in (changed.document or b"")


def test_delete_document_for_a_published_listing_now_withdrawn(store: Engine) -> None:
    with session_scope(store) as session:
        record_status(session, "O3", "hemnet", "published", action="create", marketplace_id="H-9")
    result = preview(store, "O3", "hemnet")
    assert result.action == "delete" and result.decision.delete_reason == "withdrawn"
    assert result.document is not None and b"withdrawn" in result.document


def test_unknown_listing_and_marketplace(store: Engine) -> None:
    with pytest.raises(InputError, match="not in the store"):
        preview(store, "NOPE", "hemnet")
    with pytest.raises(UnknownMarketplace):
        preview(store, "O1", "myspace")


def run(argv: list[str], database: str) -> int:
    parser = argparse.ArgumentParser()
    preview_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    settings = Settings.from_env({"SYNDICATION_DATABASE_URL": database})
    return int(args.func(args, settings))


def test_cli_exit_statuses(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {"offices": [OFFICE], "users": [BROKER], "listings": [listing("O1")]}
    ingest_document(sqlite_engine, json.dumps(document).encode())
    database = str(sqlite_engine.url)
    capsys.readouterr()
    assert run(["preview", "O1", "hemnet"], database) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<?xml") and err.startswith("create on hemnet")
    assert run(["preview", "O1", "blocket"], database) == 3
    assert "licence change" in capsys.readouterr().err
    assert run(["preview", "NOPE", "hemnet"], database) == 2
    assert "error: listing 'NOPE': is not in the store" in capsys.readouterr().err
    target = tmp_path / "doc.xml"
    assert run(["preview", "O1", "hemnet", "-o", str(target)], database) == 0
    assert target.read_bytes().startswith(b"<?xml")
