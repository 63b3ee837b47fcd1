"""Records, deliveries and a sleep recorder shared by the transport tests."""

from __future__ import annotations

import hashlib

import factories

from adapters.base import Delivery
from syndication import registry
from syndication.records import FeedInput

TOKEN = "sandbox-token-7f3a9c1e5b"

OFFICE = factories.office_record(
    "KTR-TEST",
    name="Testmäklarna",
    phone="08-123 45 67",
    email="kontor@testmaklarna.example.se",
)
BROKER = factories.user_record(
    "U-TEST",
    office_id=OFFICE.id,
    name="Test Mäklare",
    email="maklare@testmaklarna.example.se",
)


def listing(listing_id: str = "OBJ-1", headline: str = "Ljus trea med balkong") -> FeedInput:
    """The factory's listing in office ``KTR-TEST``, selected on every marketplace, which
    every marketplace accepts; ``headline`` varies the document."""
    return factories.feed_input(
        factories.listing_record(
            listing_id,
            office_id=OFFICE.id,
            broker_id=BROKER.id,
            headline=headline,
            marketplaces=factories.MARKETPLACES,
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
