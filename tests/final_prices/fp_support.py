"""Helpers of the final-price tests: seeding the store with sold listings and a
recording Hemnet transport for unit-level runs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import factories
from sqlalchemy import Engine

from adapters.base import Delivery, Receipt, Transport
from syndication.errors import TransientError
from syndication.store import session_scope
from syndication.store.models import ListingRow, OfficeRow
from syndication.store.repository import record_status

CONTRACT = date(2026, 10, 3)
PUBLISHED_AT = datetime(2026, 9, 1, 9, 30, tzinfo=UTC)


class RecordingHemnet(Transport):
    """Keeps every delivery; a repeated idempotency key is accepted without a new entry,
    as Hemnet does. ``fail`` holds listing ids to refuse (transiently)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.keys: set[str] = set()
        self.fail: set[str] = set()
        self.calls = 0

    def send(self, delivery: Delivery) -> Receipt:
        self.calls += 1
        if delivery.listing_id in self.fail:
            raise TransientError("hemnet answered 503", listing_id=delivery.listing_id,
                                 marketplace="hemnet")
        if delivery.idempotency_key not in self.keys:
            self.keys.add(delivery.idempotency_key)
            self.deliveries.append(delivery)
        return Receipt(message="ok")

    def sent(self, action: str = "final_price") -> list[str]:
        return [d.listing_id for d in self.deliveries if d.action == action]


SOLD: dict[str, Any] = {
    "state": "sold",
    "broker_id": None,
    "company_id": "C1",
    "final_price": 4_250_000,
    "contract_date": CONTRACT,
    "send_final_price": True,
}
"""What makes the factory's villa a sold listing with consent to send its final price;
without a broker unless a test names one."""
FINAL_PRICE_OFFICE: dict[str, Any] = {
    "company_id": "C1", "final_price_enabled": True, "hemnet_final_price_agreement": True,
}
"""The office setting on and the agreement with Hemnet made (R7)."""


def seed(
    engine: Engine,
    listings: Iterable[dict[str, Any]],
    *,
    offices: Iterable[dict[str, Any]] = (),
    users: Iterable[dict[str, Any]] = (),
    published: Iterable[str] | None = None,
    published_at: datetime = PUBLISHED_AT,
) -> None:
    """Store offices (default: K1 with the setting and the agreement), brokers and sold
    listings, each dict the overrides of a factory record; ``published`` (default: every
    listing) were accepted by Hemnet at ``published_at``."""
    listings = [dict(listing) for listing in listings]
    published = [x["id"] for x in listings] if published is None else list(published)
    offices = list(offices) or [{"id": "K1", **FINAL_PRICE_OFFICE}]
    records = [
        *(factories.office_record(**office) for office in offices),
        *(factories.user_record(**user) for user in users),
        *(factories.listing_record(**{**SOLD, **listing}) for listing in listings),
    ]
    with session_scope(engine) as session:
        session.add_all(factories.rows(*records))
    with session_scope(engine) as session:
        for listing_id in published:
            record_status(session, listing_id, "hemnet", "published", action="create",
                          marketplace_id=f"H-{listing_id}", at=published_at)


def update_row(engine: Engine, model: Any, key: str, **values: Any) -> None:
    """Set ``values`` on the stored ``model`` row ``key``, which must exist."""
    with session_scope(engine) as session:
        row = session.get(model, key)
        assert row is not None, (model.__name__, key)
        for name, value in values.items():
            setattr(row, name, value)


def update_listing(engine: Engine, listing_id: str, **values: Any) -> None:
    update_row(engine, ListingRow, listing_id, **values)


def update_office(engine: Engine, office_id: str, **values: Any) -> None:
    update_row(engine, OfficeRow, office_id, **values)
