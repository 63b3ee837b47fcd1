"""The status document of one listing (DESIGN §4) and its terminal table."""

from __future__ import annotations

import json

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session
from support_data import CONTACTS, PUBLIC_URL

from syndication.records import FeedInput, TransferStatus
from syndication.status_view import (
    NOT_PUBLISHED,
    NOT_TRANSFERRED,
    UnknownListing,
    format_table,
    listing_status,
    status_rows,
)

DESIGN_KEYS = {"marketplace", "state", "marketplace_id", "action", "at", "error", "contacts"}
ENTRY_KEYS = DESIGN_KEYS | {"public_url", "attempts"}
"""DESIGN §4's keys, and what else R8 keeps (the public address, the attempts)."""


def status_of(engine: Engine, listing_id: str) -> dict:
    with Session(engine) as session:
        return listing_status(session, listing_id, CONTACTS)


def by_marketplace(document: dict) -> dict[str, dict]:
    return {entry["marketplace"]: entry for entry in document["marketplaces"]}


def test_published_and_sent_rows_have_the_design_shape(seeded_any: Engine) -> None:
    document = status_of(seeded_any, "PUB")
    assert set(document) == {"object_id", "marketplaces", "photo_problems"}
    assert document["object_id"] == "PUB"
    assert all(set(entry) == ENTRY_KEYS for entry in document["marketplaces"])
    rows = by_marketplace(document)
    assert list(rows) == ["hemnet", "hittahem"]
    assert rows["hemnet"] == {
        "marketplace": "hemnet",
        "state": "published",
        "marketplace_id": "HN-1001",
        "action": "create",
        "at": "2026-11-20T09:30:00+00:00",
        "error": None,
        "contacts": None,
        "public_url": PUBLIC_URL,
        "attempts": 1,
    }
    assert rows["hittahem"]["state"] == "sent"
    assert rows["hittahem"]["public_url"] is None and rows["hittahem"]["attempts"] == 1
    json.dumps(document)


def test_failure_carries_error_and_that_marketplaces_contacts_only(seeded: Engine) -> None:
    rows = by_marketplace(status_of(seeded, "FAIL"))
    assert rows["hemnet"]["state"] == "failed"
    assert rows["hemnet"]["error"] == "Hemnet: 422 missing price"
    assert rows["hemnet"]["contacts"] == CONTACTS["hemnet"].as_dict()
    assert "try the transfer again first" in rows["hemnet"]["contacts"]["advice"]
    assert rows["hittahem"]["state"] == "queued"
    assert rows["hittahem"]["contacts"] is None


def test_unlicensed_selected_marketplace_is_listed_as_not_licensed(seeded: Engine) -> None:
    rows = by_marketplace(status_of(seeded, "NEW"))
    assert list(rows) == ["hemnet", "blocket", "hittahem"]
    assert rows["blocket"]["state"] == "not_licensed"
    assert "licence change is needed" in rows["blocket"]["error"]
    assert rows["blocket"]["contacts"] is None
    assert rows["hemnet"]["state"] == NOT_TRANSFERRED
    assert rows["hittahem"]["state"] == "not_selected"
    assert rows["hittahem"]["at"] is None


def test_deleted_and_not_selected_rows(seeded: Engine) -> None:
    rows = by_marketplace(status_of(seeded, "GONE"))
    assert rows["hemnet"]["state"] == "deleted"
    assert rows["hemnet"]["marketplace_id"] == "HN-7"
    assert rows["hemnet"]["at"].endswith("+00:00")
    assert rows["hittahem"]["state"] == "not_selected"
    assert "blocket" not in rows


def test_unresolved_photo_problems_are_shown(seeded: Engine) -> None:
    document = status_of(seeded, "FAIL")
    assert [p["message"] for p in document["photo_problems"]] == ["image 3 is not a JPEG"]
    assert status_of(seeded, "PUB")["photo_problems"] == []


def test_unknown_listing_is_a_clear_error(seeded: Engine) -> None:
    with pytest.raises(UnknownListing, match="no listing with id 'NOPE'"):
        status_of(seeded, "NOPE")


OFFICE = factories.office_record("O", licence=("hemnet", "blocket", "hittahem"))


@pytest.mark.parametrize(
    ("state", "listing_state", "selected", "expected"),
    [
        (None, "for_sale", True, NOT_TRANSFERRED),
        (None, "for_sale", False, "not_selected"),
        (None, "withdrawn", True, NOT_PUBLISHED),
        (None, "sold", True, NOT_PUBLISHED),
        ("queued", "for_sale", True, "queued"),
        ("sent", "for_sale", True, "sent"),
        ("published", "for_sale", True, "published"),
        ("failed", "for_sale", True, "failed"),
        ("deleted", "withdrawn", True, "deleted"),
        ("not_selected", "for_sale", False, "not_selected"),
    ],
)
def test_every_state_in_the_pure_rows(
    state: str | None, listing_state: str, selected: bool, expected: str
) -> None:
    listing = factories.listing_record("L", office_id="O", state=listing_state,
                                       marketplaces=("hemnet",) if selected else ())
    statuses = {} if state is None else {
        "hemnet": TransferStatus(listing_id="L", marketplace="hemnet", state=state, error="boom")
    }
    rows = status_rows(FeedInput(listing, OFFICE), statuses, CONTACTS)
    entry = rows[0]
    assert set(entry) == ENTRY_KEYS
    assert entry["state"] == expected
    assert (entry["contacts"] is not None) == (expected == "failed")


def test_table_lists_every_row_with_notes_and_contacts(seeded: Engine) -> None:
    table = format_table([status_of(seeded, "FAIL"), status_of(seeded, "NEW")])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["OBJECT", "MARKETPLACE", "STATE"]
    assert any("failed" in line and "422 missing price" in line for line in lines)
    assert any("contact: Hemnet mäklarsupport, 08-000 00 00" in line for line in lines)
    assert any("photo problem (A-9)" in line for line in lines)
    assert any("Blocket Bostad" in line and "not_licensed" in line for line in lines)
    assert any("not selected: not shown there" in line for line in lines)
    assert format_table([]) == "no listings"


def test_table_shows_the_public_address_and_attempts(seeded: Engine) -> None:
    lines = format_table(status_of(seeded, "PUB")).splitlines()
    header = lines[0].split()
    assert "TRIES" in header and header[-2:] == ["WEB", "ADDRESS"]
    hemnet = next(line for line in lines if "Hemnet" in line)
    assert hemnet.endswith(PUBLIC_URL)
    tries = lines[0].index("TRIES")
    assert hemnet[tries:tries + 5].strip() == "1"
    hittahem = next(line for line in lines if "HittaHem" in line)
    assert hittahem.rstrip().endswith("-")


@given(error=st.text(max_size=300), marketplace_id=st.text(max_size=60))
def test_any_error_text_stays_on_its_own_line(error: str, marketplace_id: str) -> None:
    document = {
        "object_id": "O\n1",
        "marketplaces": [
            {"marketplace": "hemnet", "state": "failed", "marketplace_id": marketplace_id,
             "action": "create", "at": None, "error": error, "contacts": None},
            {"marketplace": "hittahem", "state": "published", "marketplace_id": None,
             "action": None, "at": None, "error": None, "contacts": None},
        ],
    }
    lines = format_table(document).split("\n")
    assert len(lines) == 4
    assert all(ch.isprintable() for line in lines for ch in line)
    assert lines[3].startswith("O 1") and "published" in lines[3]


def test_office_view_on_both_databases(seeded_any: Engine) -> None:
    from syndication.support import office_status

    with Session(seeded_any) as session:
        failed = office_status(session, "OFF1", CONTACTS, state="failed")
        everything = office_status(session, "OFF1", CONTACTS)
    assert [d["object_id"] for d in failed["listings"]] == ["FAIL"]
    assert failed["listings"][0]["address"] == "Lillgatan 2, Uppsala"
    assert failed["listings"][0]["marketplaces"][0]["contacts"]["name"] == "Hemnet mäklarsupport"
    by_id = {d["object_id"]: d for d in everything["listings"]}
    assert list(by_id) == ["FAIL", "GONE", "NEW", "PUB"]
    assert by_id["PUB"]["marketplaces"] == status_of(seeded_any, "PUB")["marketplaces"]
