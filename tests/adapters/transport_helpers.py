"""Records, deliveries and a sleep recorder shared by the transport tests."""

from __future__ import annotations

import hashlib

from adapters.base import Delivery
from syndication import registry
from syndication.records import FeedInput, Listing, ListingImage, Office, User

TOKEN = "sandbox-token-7f3a9c1e5b"

OFFICE = Office(
    id="KTR-TEST",
    name="Testmäklarna",
    licence=("hemnet", "blocket", "hittahem"),
    phone="08-123 45 67",
    email="kontor@testmaklarna.example.se",
)
BROKER = User(
    id="U-TEST",
    office_id="KTR-TEST",
    name="Test Mäklare",
    email="maklare@testmaklarna.example.se",
)


def listing(listing_id: str = "OBJ-1", headline: str = "Ljus trea med balkong") -> FeedInput:
    """A listing every marketplace accepts; ``headline`` varies the document."""
    return FeedInput(
        Listing(
            id=listing_id,
            office_id=OFFICE.id,
            broker_id=BROKER.id,
            category="bostadsratt",
            state="for_sale",
            street="Storgatan 1",
            postal_code="11122",
            city="Stockholm",
            municipality="Stockholm",
            price=3_250_000,
            living_area=71.5,
            rooms=3,
            monthly_fee=4_100,
            headline=headline,
            description="Tre rum och kök i väl skött förening.",
            images=(ListingImage(url=f"https://media.example.se/{listing_id}/1.jpg", order=0),),
            marketplaces=("hemnet", "blocket", "hittahem"),
        ),
        OFFICE,
        BROKER,
    )


def delivery(
    marketplace: str,
    action: str = "create",
    feed_input: FeedInput | None = None,
    *,
    key: str | None = None,
    reason: str = "withdrawn",
) -> Delivery:
    """A delivery built by the real feed builders; the key defaults to one
    derived from the document, as the orchestration derives it."""
    fi = feed_input or listing()
    entry = registry.get(marketplace)
    document = entry.build_delete(fi, reason) if action == "delete" else entry.build(fi)
    key = (
        key or f"{marketplace}:{fi.listing.id}:{action}:{hashlib.sha256(document).hexdigest()[:16]}"
    )
    return Delivery(marketplace, fi.listing.id, fi.office.id, action, document, key)


class SleepRecorder(list[float]):
    """Stands in for ``time.sleep``: records each wait, sleeps not at all."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
