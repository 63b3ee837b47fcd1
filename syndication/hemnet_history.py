"""Seeding the Hemnet publication history of listings migrated from another system (R7).

The final-price sync sends a sold listing's price only when Hemnet accepted the listing
on or before its contract date, and it reads that from the transfer history. A listing
that was published on Hemnet by the agency's previous system has no such event here, so
an operator migrating seeds it from a CSV file with the header
``listing_id,hemnet_id,published_on`` (``published_on`` an ISO date, or a time with its
offset) and optionally ``public_url``.

Each row appends one ``published`` event (action ``create``, request id
:data:`REQUEST_ID`) with the HemnetID, through the history's one writer. A pair with no
status row yet also gets its status (``published`` with that id), so the next transfer
updates the listing on Hemnet instead of creating a second one; a pair that has a status
keeps it. A HemnetID that is a file drop's receipt id is refused: a file in a folder is
not a publication. Every refused row names its line and field; the others are still taken.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import Engine

from adapters.filedrop import FILE_DROP_ID_PREFIX
from syndication.store.db import session_scope
from syndication.store.models import ListingRow, TransferStatusRow
from syndication.store.repository import append_event, record_status

MARKETPLACE = "hemnet"
REQUEST_ID = "seed-hemnet-history"
COLUMNS = ("listing_id", "hemnet_id", "published_on")


@dataclass
class SeedResult:
    """How many rows were taken, and each refused one with its reason."""

    seeded: int = 0
    refused: list[str] = field(default_factory=list)


def _when(text: str) -> datetime:
    """``2026-09-01`` (the start of that day, UTC) or a time with its offset."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a time needs its UTC offset")
    return moment.astimezone(UTC)


def seed_hemnet_history(engine: Engine, path: Path) -> SeedResult:
    """Append a Hemnet publication event for every valid row of the CSV at ``path``."""
    result = SeedResult()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            result.refused.append(f"{path}: header lacks {', '.join(missing)}")
            return result
        for line, row in enumerate(reader, start=2):
            refusal = _seed_row(engine, row)
            if refusal:
                result.refused.append(f"{path}:{line}: {refusal}")
            else:
                result.seeded += 1
    return result


def _seed_row(engine: Engine, row: dict[str, str]) -> str | None:
    listing_id = (row.get("listing_id") or "").strip()
    hemnet_id = (row.get("hemnet_id") or "").strip()
    public_url = (row.get("public_url") or "").strip() or None
    if not listing_id:
        return "listing_id: empty"
    if not hemnet_id:
        return f"listing {listing_id!r}: hemnet_id: empty"
    if hemnet_id.startswith(FILE_DROP_ID_PREFIX):
        return (f"listing {listing_id!r}: hemnet_id: {hemnet_id!r} is a file drop's receipt "
                "id, not a publication on Hemnet")
    try:
        at = _when((row.get("published_on") or "").strip())
    except ValueError as exc:
        return f"listing {listing_id!r}: published_on: {exc}"
    with session_scope(engine) as session:
        if session.get(ListingRow, listing_id) is None:
            return f"listing {listing_id!r}: listing_id: no such listing"
        if session.get(TransferStatusRow, (listing_id, MARKETPLACE)) is None:
            record_status(session, listing_id, MARKETPLACE, "published", action="create",
                          marketplace_id=hemnet_id, public_url=public_url,
                          request_id=REQUEST_ID, at=at)
        else:
            append_event(session, listing_id, MARKETPLACE, "published", action="create",
                         marketplace_id=hemnet_id, request_id=REQUEST_ID, at=at)
    return None
