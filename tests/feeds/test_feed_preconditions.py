"""R12 Preconditions: every unmet condition of each marketplace, listed like its own answer."""

from __future__ import annotations

import dataclasses

import pytest
from feed_samples import PULL, SAMPLES

from syndication import registry
from syndication.records import FeedInput, ListingImage

BARE = dataclasses.replace(
    SAMPLES["villa-portrait"].listing,
    images=(),
    price=None,
    price_type="asking",
    street=None,
    city="  ",
    municipality="\x00",
    living_area=None,
    description=None,
)


def unmet(marketplace: str, **changes: object) -> list[str]:
    base = SAMPLES["villa-portrait"]
    listing = dataclasses.replace(BARE, **changes)  # type: ignore[arg-type]
    return registry.get(marketplace).preconditions(FeedInput(listing, base.office, base.broker))


def fields(messages: list[str]) -> list[str]:
    return [message.split(":", 1)[0] for message in messages]


@pytest.mark.parametrize(
    ("marketplace", "expected"),
    [
        ("hemnet", ["images", "price", "street", "municipality", "living_area"]),
        ("blocket", ["images", "price", "city"]),
        ("hittahem", ["street", "images", "description"]),
        (
            "kyero",
            ["modified_at", "price", "currency", "city", "province", "country", "description",
             "images"],
        ),
    ],
)
def test_every_unmet_condition_is_listed(marketplace: str, expected: list[str]) -> None:
    assert fields(unmet(marketplace)) == expected


@pytest.mark.parametrize("price_type", ["tender", "none"])
def test_hemnet_takes_a_listing_without_price_for_tender_or_none(price_type: str) -> None:
    assert "price" not in fields(unmet("hemnet", price_type=price_type))
    assert "price" in fields(unmet("blocket", price_type=price_type))


def test_hemnet_needs_living_area_only_for_homes() -> None:
    assert "living_area" in fields(unmet("hemnet", category="bostadsratt"))
    assert "living_area" not in fields(unmet("hemnet", category="tomt"))


def test_blocket_refuses_a_listing_without_a_price_type_it_knows() -> None:
    assert "price_type" in fields(unmet("blocket", price=100, price_type="none"))


@pytest.mark.parametrize("marketplace", [n for n in registry.names() if n not in PULL])
def test_a_complete_listing_meets_every_condition(marketplace: str) -> None:
    complete = dataclasses.replace(
        BARE,
        images=(ListingImage("https://media.example.se/1.jpg"),),
        price=1_000_000,
        street="Storgatan 1",
        city="Uppsala",
        municipality="Uppsala",
        living_area=80,
        description="Fint.",
    )
    base = SAMPLES["villa-portrait"]
    entry = registry.get(marketplace)
    assert entry.preconditions(FeedInput(complete, base.office, base.broker)) == []
    entry.build(FeedInput(complete, base.office, base.broker))
