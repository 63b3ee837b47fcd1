"""The Hemnet final-price document and its retraction: golden files, validation, hostile text."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feeds.common import document_hash
from feeds.hemnet_final_price import SCHEMA, build_final_price, build_retraction
from feeds.validate import parse_untrusted, validate
from syndication.errors import DocumentInvalid
from syndication.records import Listing
from syndication.transfer.keys import idempotency_key

GOLDEN = Path(__file__).parent / "golden"
SOLD = factories.listing_record(
    "VITEC-2026-0042",
    office_id="K-SÖDER",
    broker_id=None,
    category="bostadsratt",
    state="sold",
    street="Götgatan 12",
    postal_code=None,
    city=None,
    municipality=None,
    price=2_995_000,
    living_area=None,
    rooms=None,
    headline=None,
    description=None,
    images=(),
    final_price=3_175_000,
    contract_date=date(2026, 9, 30),
    send_final_price=True,
)
"""The golden files' listing, every field of the factory's listing given (``None`` where
the sold flat has no value), so the goldens do not move when the factory's defaults do."""


def test_final_price_document_matches_golden_file() -> None:
    assert build_final_price(SOLD) == (GOLDEN / "final_price.xml").read_bytes()


def test_retraction_matches_golden_file() -> None:
    assert build_retraction(SOLD.id, SOLD.office_id) == (GOLDEN / "retraction.xml").read_bytes()


def test_golden_files_validate() -> None:
    validate(SCHEMA, (GOLDEN / "final_price.xml").read_bytes())
    validate(SCHEMA, (GOLDEN / "retraction.xml").read_bytes())


def test_the_document_changes_exactly_with_the_final_price() -> None:
    base = build_final_price(SOLD)
    assert build_final_price(replace(SOLD, street="Ringvägen 1", price=1)) == base
    changed = build_final_price(replace(SOLD, final_price=3_200_000))
    assert document_hash(changed) != document_hash(base)

    def key(document: bytes, generation: int = 0) -> str:
        return idempotency_key(
            SOLD.id, "hemnet", "final_price", document_hash(document), generation
        )

    assert key(changed) != key(base)
    assert key(base) == key(build_final_price(SOLD))
    assert key(base, 2) != key(base, 0)


@pytest.mark.parametrize(
    "listing",
    [
        replace(SOLD, final_price=None),
        replace(SOLD, contract_date=None),
        replace(SOLD, final_price=0),
        replace(SOLD, final_price=-5),
        replace(SOLD, category="tomt"),
        replace(SOLD, id=""),
        replace(SOLD, id="x" * 65),
        replace(SOLD, office_id=" K1"),
    ],
    ids=["no-price", "no-date", "zero", "negative", "tomt", "empty-id", "long-id", "padded-office"],
)
def test_a_listing_the_document_cannot_carry_is_refused(listing: Listing) -> None:
    with pytest.raises(DocumentInvalid) as info:
        build_final_price(listing)
    assert info.value.listing_id == listing.id and info.value.marketplace == "hemnet"


def test_an_unknown_retraction_reason_is_refused() -> None:
    with pytest.raises(DocumentInvalid):
        build_retraction("O1", "K1", reason="because")


@given(st.text(max_size=80), st.text(max_size=80), st.integers(min_value=1, max_value=10**10))
def test_arbitrary_ids_give_a_valid_document_or_a_clear_refusal(
    listing_id: str, office_id: str, price: int
) -> None:
    listing = replace(SOLD, id=listing_id, office_id=office_id, final_price=price)
    try:
        document = build_final_price(listing)
    except DocumentInvalid as exc:
        assert exc.listing_id == listing_id
        return
    root = parse_untrusted(document, "final price")
    assert root.findtext("externalId") == listing_id
    assert root.findtext("agencyId") == office_id
    assert root.findtext("price") == str(price)
    assert build_final_price(listing) == document


@given(st.text(max_size=80))
def test_arbitrary_ids_in_a_retraction(listing_id: str) -> None:
    try:
        document = build_retraction(listing_id, "K1")
    except DocumentInvalid:
        return
    assert parse_untrusted(document, "retraction").findtext("externalId") == listing_id
