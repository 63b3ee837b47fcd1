"""Data of the support-access tests: a small agency in a real store.

:func:`seed` fills an engine with one office licensed for Hemnet and HittaHem
(not Blocket), a support user and listings in every transfer state, written
through :func:`syndication.store.repository.record_status` as the worker does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import factories
from sqlalchemy import Engine

from syndication.records import Contacts
from syndication.store.db import session_scope
from syndication.store.models import PhotoProblemRow
from syndication.store.repository import record_status

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
PUBLIC_URL = "https://www.hemnet.example/bostad/villa-uppsala-HN-1001"

CONTACTS = {
    "hemnet": Contacts(
        name="Hemnet mäklarsupport", phone="08-000 00 00", email="support@hemnet.example"
    ),
    "blocket": Contacts(name="Blocket Bostad", web="https://blocket.example/kontakt"),
    "hittahem": Contacts(name="HittaHem kundtjänst", email="hjalp@hittahem.example"),
}

LISTINGS: dict[str, dict[str, object]] = {
    "PUB": {"marketplaces": ("hemnet", "hittahem"), "street": "Storgatan 1",
            "system_id": "SYS-PUB"},
    "FAIL": {"marketplaces": ("hemnet", "hittahem"), "street": "Lillgatan 2",
             "system_id": "SYS-FAIL"},
    "NEW": {"marketplaces": ("hemnet", "blocket"), "street": "Nygatan 3"},
    "GONE": {"marketplaces": (), "street": "Gamla vägen 4", "state": "withdrawn"},
}
"""The factory's villa in Uppsala, without a broker or postal code, as each of these."""


def seed(engine: Engine) -> None:
    """The office, a user without password, four listings and their statuses."""
    with session_scope(engine) as session:
        session.add_all(factories.rows(
            factories.office_record("OFF1", name="Mäklarhuset City",
                                    licence=("hemnet", "hittahem")),
            factories.office_record("OFF2", name="Annat kontor", licence=("blocket",)),
            factories.user_record("anna", office_id="OFF1", name="Anna Support"),
            *(factories.listing_record(listing_id, office_id="OFF1", broker_id=None,
                                       postal_code=None, city="Uppsala", **extra)
              for listing_id, extra in LISTINGS.items()),
            factories.listing_record("OTHER", office_id="OFF2", broker_id=None,
                                     street="Kyrkvägen 5", marketplaces=("blocket",)),
        ))
        session.flush()
        record_status(session, "PUB", "hemnet", "queued", action="create", at=AT)
        record_status(session, "PUB", "hemnet", "published", action="create",
                      marketplace_id="HN-1001", public_url=PUBLIC_URL, attempt=True, at=AT)
        record_status(session, "PUB", "hittahem", "sent", action="create", attempt=True, at=AT)
        record_status(session, "FAIL", "hemnet", "failed", action="create", attempt=True,
                      error="Hemnet: 422 missing price", at=AT)
        record_status(session, "FAIL", "hittahem", "queued", action="create", at=AT)
        record_status(session, "NEW", "blocket", "not_licensed", at=AT)
        record_status(session, "GONE", "hemnet", "deleted", action="delete",
                      marketplace_id="HN-7", at=AT)
        record_status(session, "GONE", "hittahem", "not_selected", at=AT)
        session.add(PhotoProblemRow(assignment_id="A-9", system_id="SYS-FAIL",
                                    message="image 3 is not a JPEG", at=AT))
        session.add(PhotoProblemRow(assignment_id="A-8", system_id="SYS-FAIL",
                                    message="old, resolved", at=AT, resolved_at=AT))
