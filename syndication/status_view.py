"""The transfer status of a listing per marketplace, as support staff see it (R1, R8).

:func:`listing_status` answers "why is object X not on Hemnet?" with the JSON
of DESIGN §4::

    {"object_id": "OBJ1",
     "marketplaces": [{"marketplace", "state", "marketplace_id", "action",
                       "at", "error", "contacts", "public_url", "attempts"}, …],
     "photo_problems": [{"assignment_id", "system_id", "message", "at"}, …]}

``public_url`` (the listing's address on the marketplace, from its receipt)
and ``attempts`` (delivery attempts counted so far) are what R8 keeps beyond
the keys DESIGN §4 names, so they follow them as extra keys.

Which marketplaces are listed (R1): every marketplace of the office's licence,
plus a ``not_licensed`` row for each marketplace the listing selected without
a licence. A licensed marketplace without a stored row shows the state the
next transfer would record (``not_selected``: "not shown there"),
``not_transferred`` when the next transfer would send it, or ``not_published``
when the listing was sold, withdrawn or deleted before it was ever published. Contacts go only
with failures; times are ISO 8601 in UTC. ``photo_problems`` lists the photo
module's unresolved problems for the listing (R11), so a missing image is
explained in the same place.

:func:`status_rows` is the pure core, shared with the office view of
:mod:`syndication.support`; :func:`format_table` renders any number of
statuses as a fixed-width table for terminals (``syndication status``,
``syndication demo``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session, col

from syndication import registry
from syndication.errors import SyndicationError
from syndication.records import (
    TRANSFER_STATES,
    Contacts,
    FeedInput,
    TransferStatus,
)
from syndication.registry import title
from syndication.rules.licence import is_licensed, not_licensed_message
from syndication.rules.plan import decide
from syndication.rules.selection import is_selected
from syndication.store.models import ListingRow, PhotoProblemRow
from syndication.store.repository import get_statuses, load_feed_input

NOT_TRANSFERRED = "not_transferred"
"""State shown for a licensed marketplace the listing has no status row for and
that the next transfer would send to (it has never been transferred)."""

NOT_PUBLISHED = "not_published"
"""State shown for a licensed marketplace the listing has no status row for because
it was sold, withdrawn or deleted before it was ever published there."""

VIEW_STATES: tuple[str, ...] = (*TRANSFER_STATES, NOT_TRANSFERRED, NOT_PUBLISHED)
"""Every state a status view can show: the stored ones and the two derived ones."""

STATE_NOTES: dict[str, str] = {
    "queued": "waiting in the queue",
    "sent": "accepted, not yet confirmed published",
    "published": "published",
    "failed": "failed",
    "deleted": "deleted there",
    "not_selected": "not selected: not shown there",
    "not_licensed": "not in the office's licence",
    NOT_TRANSFERRED: "selected, not transferred yet",
    NOT_PUBLISHED: "sold, withdrawn or deleted before it was ever published there",
}
"""A few words per state for people, used by the table when there is no error."""


class UnknownListing(SyndicationError, LookupError):
    """The listing asked about is not in the store (or, to its asker, might as well not be)."""


def unknown_listing(listing_id: str) -> UnknownListing:
    """The one answer for a listing that is not stored, or is another tenant's (R14)."""
    return UnknownListing(f"no listing with id {listing_id!r}", listing_id=listing_id)


def iso_utc(moment: datetime | None) -> str | None:
    """``moment`` as ISO 8601 in UTC (``2026-11-23T10:45:00+00:00``), or ``None``."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _row(
    marketplace: str,
    state: str,
    status: TransferStatus | None,
    contacts: Mapping[str, Contacts],
    error: str | None,
) -> dict[str, Any]:
    failed = state == "failed"
    found = contacts.get(marketplace) if failed else None
    return {
        "marketplace": marketplace,
        "state": state,
        "marketplace_id": status.marketplace_id if status else None,
        "action": status.action if status else None,
        "at": iso_utc(status.at) if status else None,
        "error": error,
        "contacts": found.as_dict() if found is not None else None,
        "public_url": status.public_url if status else None,
        "attempts": status.attempts if status else 0,
    }


def status_rows(
    feed_input: FeedInput,
    statuses: Mapping[str, TransferStatus],
    contacts: Mapping[str, Contacts],
) -> list[dict[str, Any]]:
    """The per-marketplace entries of one listing, in display order (pure).

    Licensed marketplaces show their stored row, or, without one, the state the
    transfer decision would record. Unlicensed marketplaces appear only when the
    listing selected them (or a ``not_licensed`` row is stored), always as
    ``not_licensed`` with the message that a licence change is needed.
    """
    office, listing = feed_input.office, feed_input.listing
    rows: list[dict[str, Any]] = []
    for marketplace in registry.names():
        status = statuses.get(marketplace)
        if not is_licensed(office, marketplace):
            stored_not_licensed = status is not None and status.state == "not_licensed"
            if is_selected(listing, marketplace) or stored_not_licensed:
                message = not_licensed_message(office, marketplace)
                rows.append(_row(marketplace, "not_licensed", status, contacts, message))
            continue
        if status is not None:
            rows.append(_row(marketplace, status.state, status, contacts, status.error))
            continue
        decision = decide(feed_input, marketplace, None)
        if decision.state is not None:
            state = decision.state
        else:
            state = NOT_TRANSFERRED if decision.sends else NOT_PUBLISHED
        rows.append(_row(marketplace, state, None, contacts, None))
    return rows


def photo_problems(
    session: Session, listing_id: str, system_id: str | None
) -> list[dict[str, Any]]:
    """Unresolved photo-intake problems naming the listing or its system id (R11)."""
    match = col(PhotoProblemRow.listing_id) == listing_id
    if system_id:
        match = or_(match, col(PhotoProblemRow.system_id) == system_id)
    query = (
        select(PhotoProblemRow)
        .where(match, col(PhotoProblemRow.resolved_at).is_(None))
        .order_by(col(PhotoProblemRow.id))
    )
    return [
        {
            "assignment_id": row.assignment_id,
            "system_id": row.system_id,
            "message": row.message,
            "at": iso_utc(row.at),
        }
        for row in session.scalars(query)
    ]


def listing_status(
    session: Session, listing_id: str, contacts: Mapping[str, Contacts]
) -> dict[str, Any]:
    """The DESIGN §4 status document of one listing; :class:`UnknownListing` if it is not stored."""
    feed_input = load_feed_input(session, listing_id)
    if feed_input is None:
        row = session.get(ListingRow, listing_id)
        if row is None:
            raise unknown_listing(listing_id)
        raise UnknownListing(
            f"listing {listing_id!r} belongs to office {row.office_id!r}, which is not stored",
            listing_id=listing_id,
        )
    statuses = get_statuses(session, listing_id)
    return {
        "object_id": listing_id,
        "marketplaces": status_rows(feed_input, statuses, contacts),
        "photo_problems": photo_problems(session, listing_id, feed_input.listing.system_id),
    }


def _note(entry: Mapping[str, Any]) -> str:
    return str(entry.get("error") or STATE_NOTES.get(entry["state"], ""))


def one_line(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters, without control characters
    (a marketplace's message must not move the cursor or colour a support terminal)."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(statuses: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> str:
    """A fixed-width table of one or more status documents, for a terminal.

    One line per listing and marketplace: object, marketplace, state, the
    marketplace's id, last action, when (UTC), delivery attempts, the error or
    a note, and last the public address there (last, so a long one never pushes
    the note out of sight; whole, so it can be copied). A failure is followed
    by its error contacts, and photo problems by a line each.
    """
    documents = [statuses] if isinstance(statuses, Mapping) else list(statuses)
    header = ("OBJECT", "MARKETPLACE", "STATE", "MARKETPLACE ID", "ACTION", "AT (UTC)",
              "TRIES", "NOTE", "WEB ADDRESS")
    lines: list[tuple[str, ...]] = []
    extras: dict[int, list[str]] = {}
    for document in documents:
        for entry in document.get("marketplaces", ()):
            at = entry.get("at") or ""
            lines.append(
                (
                    one_line(str(document["object_id"]), 20),
                    title(entry["marketplace"]),
                    one_line(entry["state"], 16),
                    one_line(entry.get("marketplace_id") or "-", 24),
                    one_line(entry.get("action") or "-", 8),
                    at[:16].replace("T", " ") if at else "-",
                    str(entry.get("attempts") or 0),
                    one_line(_note(entry), 70),
                    one_line(entry.get("public_url") or "-", 2000),
                )
            )
            contacts = entry.get("contacts")
            if contacts:
                reach = ", ".join(
                    str(contacts[k]) for k in ("name", "phone", "email", "web") if contacts.get(k)
                )
                extras[len(lines) - 1] = [
                    one_line(f"contact: {reach}", 160),
                    one_line(f"advice: {contacts.get('advice')}", 160),
                ]
        for problem in document.get("photo_problems", ()):
            text = f"photo problem ({problem['assignment_id']}): {problem['message']}"
            extras.setdefault(len(lines) - 1, []).append(one_line(text, 110))
    if not lines:
        return "no listings"
    widths = [max(len(row[i]) for row in (header, *lines)) for i in range(len(header))]
    indent = " " * (sum(widths[:2]) + 4)

    def render(row: tuple[str, ...]) -> str:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        return "  ".join(cells).rstrip()

    out = [render(header), render(tuple("-" * w for w in widths))]
    for index, row in enumerate(lines):
        out.append(render(row))
        out.extend(indent + extra for extra in extras.get(index, ()))
    return "\n".join(out)
