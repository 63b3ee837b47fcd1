"""Queries for support staff: an office at a glance, a listing's history, finding a listing.

:func:`office_status` answers "what failed for this office, and why?" for all
of an office's listings in two queries (the office; its listings outer-joined
with their status rows), whatever the number of listings, and builds each
listing's entries with the same pure :func:`~syndication.status_view.status_rows`
as the single-listing view. :func:`listing_history` is the append-only event
history (R8). :func:`office_photo_problems` gives the photo module's unresolved
problems an office's support must see (R11). :func:`find_listings` finds
listings by id, system id or address for the web view, ignoring case as
Python's ``str.casefold`` does on both databases (SQLite's own ``lower`` folds
only ASCII, so there the column is folded by a Python function registered on
the connection).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlmodel import Session, col

from syndication import registry
from syndication.errors import SyndicationError
from syndication.records import Contacts, FeedInput, Listing, TransferStatus
from syndication.status_view import VIEW_STATES, iso_utc, one_line, status_rows
from syndication.store.models import ListingRow, OfficeRow, PhotoProblemRow, TransferStatusRow
from syndication.store.repository import history, office_record

FILTER_STATES: tuple[str, ...] = VIEW_STATES
"""States the office view can be filtered by."""

SEARCH_LIMIT = 50
SQLITE_FOLD = "syndication_casefold"
"""The SQL name of :func:`fold_text` on a SQLite connection that searches."""

UNMATCHED_ADVICE = (
    "No listing has this system id. Check the system id in the photo portal's assignment, "
    "or create the listing with that system id; the assignment stays ready and is fetched "
    "again at the next photo round (inget objekt har detta system-id: kontrollera system-id "
    "i fotoportalens uppdrag eller skapa objektet; uppdraget hämtas igen vid nästa bildhämtning)"
)
"""What support is told about an assignment whose system id names no listing (R11)."""


class UnknownOffice(SyndicationError, LookupError):
    """The office asked about is not in the store (or, to its asker, might as well not be)."""


def unknown_office(office_id: str) -> UnknownOffice:
    """The one answer for an office that is not stored, or is another tenant's (R14)."""
    return UnknownOffice(f"no office with id {office_id!r}")


def _office_query(office_id: str) -> Any:
    """The office's listings outer-joined with their status rows: only the columns the
    view needs, so a large office is not paid for in ORM objects and JSON columns."""
    listing, status = ListingRow, TransferStatusRow
    return (
        select(
            col(listing.id), col(listing.category), col(listing.state),
            col(listing.system_id), col(listing.street), col(listing.postal_code),
            col(listing.city), col(listing.marketplaces), col(status.marketplace),
            col(status.state).label("status_state"), col(status.marketplace_id),
            col(status.action), col(status.at), col(status.error),
            col(status.public_url), col(status.attempts),
        )
        .outerjoin(status, col(status.listing_id) == col(listing.id))
        .where(col(listing.office_id) == office_id)
        .order_by(col(listing.id))
    )


def address_of(row: ListingRow | Listing) -> str:
    """The listing's address on one line (street, postal code and city where known)."""
    town = " ".join(part for part in (row.postal_code, row.city) if part)
    return ", ".join(part for part in (row.street, town) if part)


def office_status(
    session: Session,
    office_id: str,
    contacts: Mapping[str, Contacts],
    *,
    state: str | None = None,
    marketplace: str | None = None,
) -> dict[str, Any]:
    """Every listing of ``office_id`` with its state on each marketplace.

    ``state`` and ``marketplace`` keep only the matching entries (listings left
    with none are dropped). Returns ``{"office_id", "office", "listings": [status
    documents with "address" and "system_id"]}``, listings ordered by id.
    """
    if state is not None and state not in FILTER_STATES:
        raise SyndicationError(f"unknown state {state!r}; known: {', '.join(FILTER_STATES)}")
    if marketplace is not None:
        registry.get(marketplace)
    office_row = session.get(OfficeRow, office_id)
    if office_row is None:
        raise unknown_office(office_id)
    office = office_record(office_row)
    listings: dict[str, Listing] = {}
    statuses: dict[str, dict[str, TransferStatus]] = {}
    for row in session.execute(_office_query(office_id)):
        listing = listings.get(row.id)
        if listing is None:
            listing = listings[row.id] = Listing(
                id=row.id, office_id=office_id, category=row.category, state=row.state,
                system_id=row.system_id, street=row.street, postal_code=row.postal_code,
                city=row.city, marketplaces=tuple(row.marketplaces or ()),
            )
        found = statuses.setdefault(row.id, {})
        if row.marketplace is not None:
            found[row.marketplace] = TransferStatus(
                listing_id=row.id, marketplace=row.marketplace, state=row.status_state,
                marketplace_id=row.marketplace_id, public_url=row.public_url,
                action=row.action, at=row.at, attempts=row.attempts or 0, error=row.error,
            )

    documents = []
    for listing_id, listing in listings.items():
        entries = status_rows(FeedInput(listing, office), statuses[listing_id], contacts)
        entries = [
            entry
            for entry in entries
            if (state is None or entry["state"] == state)
            and (marketplace is None or entry["marketplace"] == marketplace)
        ]
        if entries:
            documents.append(
                {
                    "object_id": listing_id,
                    "system_id": listing.system_id,
                    "address": address_of(listing),
                    "marketplaces": entries,
                }
            )
    return {"office_id": office.id, "office": office.name, "listings": documents}


def office_photo_problems(session: Session, office_id: str) -> list[dict[str, Any]]:
    """The unresolved photo problems the office's status shows, oldest first (R11).

    That is the problems of the office's own listings (named by listing or by
    system id) and every problem of an assignment whose system id names no
    listing at all: such an assignment cannot be tied to an office until its
    system id is mended, so each office's support sees it, with
    :data:`UNMATCHED_ADVICE`. One query, whatever the number of listings. Returns
    ``[{"assignment_id", "system_id", "listing_id", "message", "at", "unmatched",
    "advice"}]``; ``advice`` is ``None`` for a problem of a known listing.
    """
    problem = PhotoProblemRow
    office_ids = select(col(ListingRow.id)).where(col(ListingRow.office_id) == office_id)
    office_system_ids = select(col(ListingRow.system_id)).where(
        col(ListingRow.office_id) == office_id, col(ListingRow.system_id).is_not(None)
    )
    known_system_ids = select(col(ListingRow.system_id)).where(
        col(ListingRow.system_id).is_not(None)
    )
    unmatched = and_(
        col(problem.listing_id).is_(None),
        or_(col(problem.system_id).is_(None), not_(col(problem.system_id).in_(known_system_ids))),
    )
    query = (
        select(problem, unmatched.label("unmatched"))
        .where(
            col(problem.resolved_at).is_(None),
            or_(
                col(problem.listing_id).in_(office_ids),
                col(problem.system_id).in_(office_system_ids),
                unmatched,
            ),
        )
        .order_by(col(problem.id))
    )
    return [
        {
            "assignment_id": row.assignment_id,
            "system_id": row.system_id,
            "listing_id": row.listing_id,
            "message": row.message,
            "at": iso_utc(row.at),
            "unmatched": bool(is_unmatched),
            "advice": UNMATCHED_ADVICE if is_unmatched else None,
        }
        for row, is_unmatched in session.execute(query)
    ]


def format_photo_problems(problems: list[dict[str, Any]]) -> str:
    """The photo problems as lines for a terminal: assignment, system id, message, advice."""
    if not problems:
        return "no unresolved photo problems"
    lines = []
    for problem in problems:
        where = f"listing {problem['listing_id']}" if problem["listing_id"] else "no listing"
        lines.append(one_line(
            f"assignment {problem['assignment_id']} · system id {problem['system_id'] or '-'} "
            f"· {where} · {(problem['at'] or '')[:16].replace('T', ' ')}: {problem['message']}",
            300,
        ))
        if problem["advice"]:
            lines.append("  what to do: " + one_line(problem["advice"], 400))
    return "\n".join(lines)


def listing_history(session: Session, listing_id: str) -> list[dict[str, Any]]:
    """Every recorded status change of the listing, oldest first, ready for JSON."""
    return [history_entry(event) for event in history(session, listing_id)]


def history_entry(event: Any) -> dict[str, Any]:
    """One recorded status change (a ``transfer_event`` row), ready for JSON."""
    return {
        "marketplace": event.marketplace,
        "state": event.state,
        "action": event.action,
        "marketplace_id": event.marketplace_id,
        "attempts": event.attempts,
        "error": event.error,
        "at": iso_utc(event.at),
    }


def format_history(events: list[dict[str, Any]]) -> str:
    """The history as lines for a terminal: when, marketplace, state, action, error."""
    if not events:
        return "no history"
    lines = []
    for event in events:
        at = (event["at"] or "")[:19].replace("T", " ")
        parts = [at, event["marketplace"].ljust(8), event["state"].ljust(12)]
        parts.append(event["action"] or "-")
        if event["marketplace_id"]:
            parts.append(f"id {event['marketplace_id']}")
        if event["error"]:
            parts.append(one_line(f"error: {event['error']}", 200))
        lines.append("  ".join(parts))
    return "\n".join(lines)


def fold_text(value: str | None) -> str | None:
    """``value`` case-folded as the search compares it (``None`` stays ``None``)."""
    return None if value is None else value.casefold()


def _folder(session: Session) -> Any:
    """The SQL function that folds a column like :func:`fold_text`: PostgreSQL's
    ``lower`` (Unicode-aware), or on SQLite the Python function, registered on the
    session's connection (deterministic, so it is cheap to register per search)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return func.lower
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.create_function(SQLITE_FOLD, 1, fold_text, deterministic=True)
    return getattr(func, SQLITE_FOLD)


def _contains(fold: Any, column: Any, word: str) -> ColumnElement[bool]:
    escaped = word.casefold().replace("/", "//").replace("%", "/%").replace("_", "/_")
    return fold(column).like(f"%{escaped}%", escape="/")  # type: ignore[no-any-return]


def find_listings(
    session: Session, text: str, limit: int = SEARCH_LIMIT, *, offices: Any = None
) -> list[dict[str, Any]]:
    """Listings whose id or system id is ``text``, or whose address contains it.

    ``offices``, a ``SELECT`` of office ids (:func:`syndication.scope.readable_offices`),
    keeps only those offices' listings, in the query itself, so the limit counts
    only what the asker may see (R14).

    Matching ignores case — ids too, so ``obj-1`` finds ``OBJ-1`` — with Swedish
    letters folded alike on SQLite and PostgreSQL (``ÅSGATAN`` finds
    ``Åsgatan``); every word of ``text`` must occur in the street, the postal
    code or the city. ``%`` and ``_`` in ``text`` are matched literally.
    Returns ``[{"object_id", "system_id", "office_id", "address", "state"}]``.
    """
    text = text.strip()
    if not text:
        return []
    fold = _folder(session)
    folded = text.casefold()
    address_match = and_(
        *(
            or_(*(_contains(fold, column, word)
                  for column in (ListingRow.street, ListingRow.city, ListingRow.postal_code)))
            for word in text.split()
        )
    )
    query = (
        select(ListingRow)
        .where(or_(fold(col(ListingRow.id)) == folded, fold(col(ListingRow.system_id)) == folded,
                   address_match))
        .order_by(ListingRow.id)
        .limit(limit)
    )
    if offices is not None:
        query = query.where(col(ListingRow.office_id).in_(offices))
    return [
        {
            "object_id": row.id,
            "system_id": row.system_id,
            "office_id": row.office_id,
            "address": address_of(row),
            "state": row.state,
        }
        for row in session.scalars(query)
    ]
