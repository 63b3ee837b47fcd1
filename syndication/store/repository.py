"""Reading records out of the store and writing transfer outcomes into it.

Rows become the plain records of :mod:`syndication.records` here and nowhere
else. :func:`record_status` is the single writer of transfer status: it
updates the current row and appends to the history in one transaction (R8).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlmodel import Session, col

from syndication.records import (
    FeedInput,
    Listing,
    ListingImage,
    Office,
    TransferStatus,
    User,
    UserImage,
    Viewing,
)
from syndication.store.db import among
from syndication.store.models import (
    ListingImageRow,
    ListingRow,
    OfficeRow,
    TransferEventRow,
    TransferStatusRow,
    UserRow,
    utcnow,
)


def office_record(row: OfficeRow) -> Office:
    return Office(
        id=row.id,
        name=row.name,
        licence=tuple(row.licence or ()),
        category_defaults={k: tuple(v) for k, v in (row.category_defaults or {}).items()},
        final_price_enabled=row.final_price_enabled,
        hemnet_final_price_agreement=row.hemnet_final_price_agreement,
        company_id=row.company_id,
        logo_url=row.logo_url,
        phone=row.phone,
        email=row.email,
        street=row.street,
        postal_code=row.postal_code,
        city=row.city,
        website=row.website,
    )


def user_record(row: UserRow) -> User:
    return User(
        id=row.id,
        office_id=row.office_id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        title=row.title,
        show_on_internet=row.show_on_internet,
        images=tuple(
            UserImage(
                url=img["url"],
                category=img["category"],
                to_internet=bool(img.get("to_internet", False)),
                order=int(img.get("order", 0)),
            )
            for img in (row.images or ())
        ),
        companies=tuple(row.companies or ()),
        main_company=row.main_company,
        statistics_all_companies=row.statistics_all_companies,
    )


def listing_record(row: ListingRow, images: Sequence[ListingImageRow] = ()) -> Listing:
    ordered = sorted(images, key=lambda img: (img.position, img.id or 0))
    return Listing(
        id=row.id,
        office_id=row.office_id,
        category=row.category,
        state=row.state,
        system_id=row.system_id,
        company_id=row.company_id,
        broker_id=row.broker_id,
        orientations=tuple(row.orientations or ()),
        street=row.street,
        postal_code=row.postal_code,
        city=row.city,
        municipality=row.municipality,
        area=row.area,
        latitude=row.latitude,
        longitude=row.longitude,
        price=row.price,
        price_type=row.price_type,
        living_area=row.living_area,
        plot_area=row.plot_area,
        rooms=row.rooms,
        monthly_fee=row.monthly_fee,
        build_year=row.build_year,
        headline=row.headline,
        short_description=row.short_description,
        description=row.description,
        images=tuple(
            ListingImage(
                url=img.url, order=img.position, caption=img.caption, tag=img.tag, source=img.source
            )
            for img in ordered
        ),
        viewings=tuple(
            Viewing(
                starts_at=datetime.fromisoformat(v["starts_at"]),
                ends_at=datetime.fromisoformat(v["ends_at"]) if v.get("ends_at") else None,
                note=v.get("note"),
            )
            for v in (row.viewings or ())
        ),
        marketplaces=tuple(row.marketplaces or ()),
        final_price=row.final_price,
        contract_date=row.contract_date,
        send_final_price=row.send_final_price,
        country=row.country,
        province=row.province,
        currency=row.currency,
        bedrooms=row.bedrooms,
        bathrooms=row.bathrooms,
        description_en=row.description_en,
        modified_at=row.modified_at,
    )


def load_feed_inputs(session: Session, listing_ids: Iterable[str]) -> dict[str, FeedInput]:
    """The listings with their offices and brokers, in four queries whatever their number.

    The listings and their images are read as plain rows (SQLAlchemy Core), not ORM
    objects: the records need only their columns, and a fan-out batch reads hundreds
    of listings and thousands of images, where the ORM's instances were most of the cost.
    """
    ids = list(dict.fromkeys(listing_ids))
    if not ids:
        return {}
    listing_table: Any = ListingRow.__table__  # type: ignore[attr-defined]
    image_table: Any = ListingImageRow.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    listings: Sequence[Any] = session.execute(
        select(listing_table).where(among(listing_table.c.id, ids, dialect))
    ).all()
    images: dict[str, list[Any]] = defaultdict(list)
    for img in session.execute(
        select(image_table).where(among(image_table.c.listing_id, ids, dialect))
    ):
        images[img.listing_id].append(img)
    office_ids = {row.office_id for row in listings}
    broker_ids = {row.broker_id for row in listings if row.broker_id}
    offices = {
        row.id: office_record(row)
        for row in session.scalars(select(OfficeRow).where(OfficeRow.id.in_(office_ids)))  # type: ignore[attr-defined]
    }
    brokers = {
        row.id: user_record(row)
        for row in session.scalars(select(UserRow).where(UserRow.id.in_(broker_ids)))  # type: ignore[attr-defined]
    }
    result: dict[str, FeedInput] = {}
    for row in listings:
        office = offices.get(row.office_id)
        if office is None:
            continue
        result[row.id] = FeedInput(
            listing=listing_record(row, images.get(row.id, ())),
            office=office,
            broker=brokers.get(row.broker_id) if row.broker_id else None,
        )
    return result


def load_feed_input(session: Session, listing_id: str) -> FeedInput | None:
    """One listing with its office and broker, or ``None`` when it is not stored."""
    return load_feed_inputs(session, [listing_id]).get(listing_id)


def status_record(row: TransferStatusRow) -> TransferStatus:
    return TransferStatus(
        listing_id=row.listing_id,
        marketplace=row.marketplace,
        state=row.state,
        marketplace_id=row.marketplace_id,
        public_url=row.public_url,
        action=row.action,
        at=row.at,
        attempts=row.attempts,
        error=row.error,
        document_hash=row.document_hash,
    )


def get_statuses(session: Session, listing_id: str) -> dict[str, TransferStatus]:
    """The stored status of a listing on each marketplace it has a row for."""
    rows = session.scalars(
        select(TransferStatusRow).where(col(TransferStatusRow.listing_id) == listing_id)
    )
    return {row.marketplace: status_record(row) for row in rows}


_UNSET: object = object()


def record_status(
    session: Session,
    listing_id: str,
    marketplace: str,
    state: str,
    *,
    action: str | None | object = _UNSET,
    marketplace_id: str | None | object = _UNSET,
    public_url: str | None | object = _UNSET,
    error: str | None = None,
    document_hash: str | None | object = _UNSET,
    request_id: str | None | object = _UNSET,
    attempt: bool = False,
    at: datetime | None = None,
) -> TransferStatusRow:
    """Set the status of ``listing_id`` on ``marketplace`` and append it to the history.

    Arguments left unset keep their stored value; ``error`` is cleared unless
    given. ``attempt`` counts one more delivery attempt. The caller's session
    commits both writes together, so a status is never stored without its event.
    """
    now = at or utcnow()
    row = session.get(TransferStatusRow, (listing_id, marketplace))
    if row is None:
        row = TransferStatusRow(listing_id=listing_id, marketplace=marketplace, state=state)
        session.add(row)
    row.state = state
    row.error = error
    row.at = now
    row.updated_at = now
    if action is not _UNSET:
        row.action = action  # type: ignore[assignment]
    if marketplace_id is not _UNSET:
        row.marketplace_id = marketplace_id  # type: ignore[assignment]
    if public_url is not _UNSET:
        row.public_url = public_url  # type: ignore[assignment]
    if document_hash is not _UNSET:
        row.document_hash = document_hash  # type: ignore[assignment]
    if request_id is not _UNSET:
        row.request_id = request_id  # type: ignore[assignment]
    if attempt:
        row.attempts = (row.attempts or 0) + 1
    append_event(
        session, listing_id, marketplace, state, action=row.action,
        marketplace_id=row.marketplace_id, error=error, attempts=row.attempts,
        request_id=row.request_id, at=now,
    )
    return row


def append_event(
    session: Session,
    listing_id: str,
    marketplace: str,
    state: str,
    *,
    action: str | None,
    at: datetime,
    attempts: int = 0,
    marketplace_id: str | None = None,
    error: str | None = None,
    request_id: str | None = None,
    actor: str | None = None,
) -> None:
    """Append one event to the history, the one writer of it (it is never rewritten).

    :func:`record_status` calls it for every status change; the final-price sync
    for its deliveries, which have a table of their own instead of a status row;
    the web view for a person's "Försök igen", with ``actor`` the user who asked.
    """
    session.add(
        TransferEventRow(
            listing_id=listing_id, marketplace=marketplace, state=state, action=action,
            marketplace_id=marketplace_id, error=error, attempts=attempts,
            request_id=request_id, at=at, actor=actor,
        )
    )


EVENT_DEFAULTS: dict[str, object] = {
    "attempts": 0, "marketplace_id": None, "error": None, "request_id": None, "actor": None,
}


def append_events(conn: Connection, events: Sequence[Mapping[str, object]]) -> None:
    """Append many events at once, the bulk form of :func:`append_event` on a Core
    connection: one INSERT executemany, for a writer that records a whole batch in one
    transaction (the final-price sync). Each event names ``listing_id``,
    ``marketplace``, ``state``, ``action`` and ``at``; the other columns default as
    in :func:`append_event`."""
    if events:
        conn.execute(insert(TransferEventRow.__table__),  # type: ignore[attr-defined]
                     [{**EVENT_DEFAULTS, **event} for event in events])


def history(
    session: Session, listing_id: str, marketplace: str | None = None
) -> list[TransferEventRow]:
    """Every recorded event of a listing, oldest first."""
    query = select(TransferEventRow).where(col(TransferEventRow.listing_id) == listing_id)
    if marketplace is not None:
        query = query.where(col(TransferEventRow.marketplace) == marketplace)
    return list(session.scalars(query.order_by(TransferEventRow.id)))  # type: ignore[arg-type]
