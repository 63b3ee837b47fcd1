"""Helpers of the photo-intake tests: a hand-moved clock, real images, listings in the store."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factories
from PIL import Image
from sqlalchemy import Engine, select

from syndication.records import ListingImage
from syndication.store.db import session_scope
from syndication.store.models import ListingImageRow, OfficeRow

TOKEN = "s3cr3t-portal-token-7f1c"


@dataclass
class Clock:
    """A clock tests move by hand."""

    now: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (160, 120), color: str = "teal"
) -> bytes:
    """A real, small image file of ``fmt``."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def add_listing(
    engine: Engine, listing_id: str, system_id: str | None, desktop_images: int = 1
) -> None:
    """The factory's villa for sale, without a broker, selected on every marketplace, with
    ``system_id`` and ``desktop_images`` images from the desktop; its office ``K1`` (with
    contacts) is added when missing."""
    images = tuple(
        ListingImage(url=f"https://img.example/{listing_id}/{n}.jpg", order=n)
        for n in range(desktop_images)
    )
    listing = factories.listing_record(
        listing_id, system_id=system_id, broker_id=None, images=images,
        marketplaces=factories.MARKETPLACES,
    )
    with session_scope(engine) as session:
        if session.get(OfficeRow, listing.office_id) is None:
            office = factories.office_record(listing.office_id, phone="08-123 456 00",
                                             email="info@soder.example")
            session.add_all(factories.rows(office))
        session.add_all(factories.rows(listing))


def listing_images(engine: Engine, listing_id: str) -> list[ListingImageRow]:
    with session_scope(engine) as session:
        query = select(ListingImageRow).where(ListingImageRow.listing_id == listing_id)
        return sorted(session.scalars(query), key=lambda row: (row.position, row.id or 0))


def portal_images(engine: Engine, listing_id: str) -> list[ListingImageRow]:
    return [row for row in listing_images(engine, listing_id) if row.source == "portal"]


def stored_files(media_dir: Path) -> list[Path]:
    """Every file under the media folder, staging included."""
    return sorted(p for p in media_dir.rglob("*") if p.is_file()) if media_dir.exists() else []
