"""A delete the marketplace answers with 404 ("not known") against the sandbox over HTTP.

It is recorded ``deleted`` — what was asked for is true as far as the
marketplace says — but with a note that the marketplace did not know the
listing, in the status and in the history, so support can tell it from a
delete the marketplace carried out (it may still hold the listing).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from adapters.sandbox import Sandbox
from syndication.cli import main
from syndication.ingest import ingest_document
from syndication.status_view import format_table, listing_status
from syndication.store.db import make_engine, migrate
from syndication.support import format_history, listing_history
from syndication.transfer import NOT_KNOWN_NOTE

NOTE = "the marketplace did not know the listing"


def records(state: str) -> bytes:
    listing = {
        "id": "O1", "office_id": "K1", "category": "villa", "state": state,
        "price": 3_950_000, "living_area": 142, "rooms": 5,
        "address": {"street": "Storgatan 1", "postal_code": "123 45", "city": "Uppsala",
                    "municipality": "Uppsala"},
        "headline": "Villa vid ån", "description": "Ljus villa med trädgård.",
        "images": [{"url": "https://img.example.se/O1/1.jpg", "order": 0}],
        "marketplaces": ["hemnet", "hittahem"],
    }
    office = {"id": "K1", "name": "Mäklarbyrån K1", "licence": ["hemnet", "hittahem"]}
    return json.dumps({"offices": [office], "users": [], "listings": [listing]}).encode()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Engine]]:
    with Sandbox() as sandbox:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = make_engine(url)
        migrate(engine)
        marketplaces = sandbox.write_marketplaces_file(tmp_path / "mp.toml", max_attempts=2)
        for name, value in {
            "SYNDICATION_DATABASE_URL": url, "SYNDICATION_MARKETPLACES": str(marketplaces),
            "SYNDICATION_OUTBOX": str(tmp_path / "outbox"), "SYNDICATION_LOG_FORMAT": "json",
            "SYNDICATION_CONFIRM_DELAY_MS": "50",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SYNDICATION_BROKER_URL", raising=False)
        assert ingest_document(engine, records("for_sale")).ok
        assert main(["transfer", "--object", "O1", "--wait"]) == 0
        assert sandbox["hemnet"].holds("O1") and sandbox["hittahem"].holds("O1")
        assert ingest_document(engine, records("withdrawn")).ok
        yield sandbox, engine
        engine.dispose()


def status(engine: Engine) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with Session(engine) as session:
        return listing_status(session, "O1", {}), listing_history(session, "O1")


def test_a_404_to_a_delete_is_deleted_with_the_note(
    world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox, engine = world
    hemnet, hittahem = sandbox["hemnet"], sandbox["hittahem"]
    hemnet.faults.fail_next(1, status=404)
    capsys.readouterr()
    assert main(["transfer", "--object", "O1", "--wait"]) == 0
    assert "deleted" in capsys.readouterr().out

    assert hemnet.holds("O1"), "the 404 did not remove it: the note is all support has"
    assert not hittahem.holds("O1")
    document, events = status(engine)
    rows = {row["marketplace"]: row for row in document["marketplaces"]}
    assert rows["hemnet"]["state"] == "deleted" and rows["hemnet"]["error"] == NOT_KNOWN_NOTE
    assert NOTE in NOT_KNOWN_NOTE and "kände inte till" in NOT_KNOWN_NOTE
    assert rows["hittahem"]["state"] == "deleted"
    assert rows["hittahem"]["error"] == "deleted: withdrawn in the desktop", "the reason (R13)"
    last = {e["marketplace"]: e for e in events}
    assert (last["hemnet"]["state"], last["hemnet"]["error"]) == ("deleted", NOT_KNOWN_NOTE)
    assert last["hittahem"]["error"] == "deleted: withdrawn in the desktop"
    assert any(NOTE in line and "Hemnet" in line for line in format_table(document).splitlines())
    assert NOTE in format_history(events)

    assert main(["transfer", "--object", "O1", "--wait"]) == 0
    document, events = status(engine)
    again = {row["marketplace"]: row for row in document["marketplaces"]}
    assert again["hemnet"]["error"] == NOT_KNOWN_NOTE, "a later transfer keeps the note"


def test_a_listing_removed_by_hand_gets_the_same_note(world: tuple[Sandbox, Engine]) -> None:
    sandbox, engine = world
    sandbox["hemnet"].remove_by_hand("O1")
    assert main(["transfer", "--object", "O1", "--wait"]) == 0
    document, _ = status(engine)
    rows = {row["marketplace"]: row for row in document["marketplaces"]}
    assert (rows["hemnet"]["state"], rows["hemnet"]["error"]) == ("deleted", NOT_KNOWN_NOTE)
