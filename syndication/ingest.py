"""Ingest: the desktop's input document into the store, record by record.

The document is ``{"offices": [...], "users": [...], "listings": [...]}``
(``schemas/records.schema.json``). :func:`ingest_document` reads it defensively
(a size limit, nesting too deep to read, invalid UTF-8, NaN: each one clear
error about the document), validates every record on its own with the JSON
Schema and with the checks a schema cannot express (the office and broker a
record names exist in the document or the store, orientations only on farms,
…), and upserts the valid records by id in batches, offices before users
before listings, in one transaction (reading and the checks within one record
live in :mod:`syndication.input_validation`; the references between records,
which need the store, are checked here). A bad record is reported as
``listing 'OBJ1': field 'price': …`` and left out; the stored copy of it, and
everything else, stays as it was.

An upsert replaces what the desktop owns and keeps what it does not:

* a user's password (set through ``syndication users``) is kept;
* a listing's images from the desktop are replaced, images added by the photo
  module (``source = portal``) are kept;
* a listing's marketplace selection follows R2: a listing sent without
  ``marketplaces`` keeps its stored selection, and a new one gets its office's
  defaults for its category; :func:`syndication.rules.selection.resolve_selection`
  decides, for every listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col

from syndication.errors import ConfigurationError
from syndication.holds import Guard, guard_ingest
from syndication.input_validation import (
    KINDS,
    MAX_DOCUMENT_BYTES,
    RecordError,
    parse_document,
    record_errors,
    schema,
    timestamp,
)
from syndication.logs import get_logger
from syndication.records import Office
from syndication.registry import ordered
from syndication.rules.selection import resolve_selection
from syndication.store.db import session_scope
from syndication.store.models import ListingImageRow, ListingRow, OfficeRow, UserRow, utcnow

BATCH_PARAMETERS = 15_000
"""Values per batch of one upsert (rows per batch = this // columns), bounding its memory."""

__all__ = [
    "BATCH_PARAMETERS", "KINDS", "MAX_DOCUMENT_BYTES", "IngestReport", "RecordError", "Refusal",
    "ingest_document", "parse_document", "schema",
]


@dataclass
class IngestReport:
    """What an ingest took and what it rejected, per kind of record."""

    offices: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    listings: list[str] = field(default_factory=list)
    created_listings: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    rejected: int = 0
    holds: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every record of the document was taken."""
        return self.rejected == 0

    @property
    def accepted(self) -> int:
        return len(self.offices) + len(self.users) + len(self.listings)

    def summary(self) -> str:
        return (
            f"{len(self.offices)} offices, {len(self.users)} users, {len(self.listings)} listings "
            f"taken ({len(self.created_listings)} new listings); {self.rejected} records rejected"
        )


@dataclass
class _Checked:
    """The valid records of one kind, by id, in document order."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected_ids: set[str] = field(default_factory=set)


Refusal = Callable[[str, str, dict[str, Any]], list[RecordError]]
"""``(kind, record name, record) -> problems``: a caller's own check of each valid record
(the API's tenancy, :mod:`syndication.api.write_scope`); a record with problems is rejected."""


def _check(
    kind: str, records: Sequence[Any], report: IngestReport, refuse: Refusal | None = None
) -> _Checked:
    """Validate each record of ``kind``; keep the valid ones, report the others."""
    checked = _Checked()
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        name, errors = record_errors(kind, index, record)
        rid = record.get("id") if isinstance(record, dict) else None
        if not errors and rid in seen:
            errors = [RecordError(f"appears twice in the document (first as {kind} "
                                  f"#{seen[rid] + 1}, which was taken)", record=name, field="id")]
        if not errors and refuse is not None:
            errors = refuse(kind, name, record)
        if errors:
            report.errors.extend(errors)
            report.rejected += 1
            if isinstance(rid, str):
                checked.rejected_ids.add(rid)
            continue
        seen[record["id"]] = index
        checked.records[record["id"]] = record
    return checked


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]


def _stored(session: Session, column: Any, ids: Iterable[str], *extra: Any) -> dict[str, Any]:
    """``{id: row}`` of the stored rows whose ``column`` is one of ``ids``."""
    wanted = sorted(set(ids))
    found: dict[str, Any] = {}
    for chunk in _chunks(wanted, 500):
        for row in session.execute(select(column, *extra).where(column.in_(chunk))):
            found[row[0]] = row
    return found


def _drop_missing(
    checked: _Checked, kind: str, field_name: str, what: str, present: set[str],
    in_document: _Checked, report: IngestReport,
) -> None:
    """Reject the records whose ``field_name`` names a ``what`` neither valid in the document
    nor stored."""
    for rid in list(checked.records):
        target = checked.records[rid].get(field_name)
        if target is None or target in present:
            continue
        why = ("was rejected in this document and is not stored"
               if target in in_document.rejected_ids else "is not in the document or the store")
        report.errors.append(RecordError(f"{what} {target!r} {why}", record=f"{kind} {rid!r}",
                                         field=field_name))
        report.rejected += 1
        checked.rejected_ids.add(rid)
        del checked.records[rid]


def _office_row(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    address, contacts = record.get("address") or {}, record.get("contacts") or {}
    return {
        "id": record["id"], "name": record["name"], "company_id": record.get("company_id"),
        "licence": list(ordered(record.get("licence") or ())),
        "category_defaults": {
            category: list(ordered(names))
            for category, names in (record.get("category_defaults") or {}).items()
        },
        "final_price_enabled": record.get("final_price_enabled", False),
        "hemnet_final_price_agreement": record.get("hemnet_final_price_agreement", False),
        "logo_url": record.get("logo_url"), "phone": contacts.get("phone"),
        "email": contacts.get("email"), "website": contacts.get("website"),
        "street": address.get("street"), "postal_code": address.get("postal_code"),
        "city": address.get("city"), "updated_at": now,
    }


def _user_row(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    images = [
        {"url": image["url"], "category": image["category"],
         "to_internet": image.get("to_internet", False), "order": int(image.get("order", index))}
        for index, image in enumerate(record.get("images") or ())
    ]
    return {
        "id": record["id"], "office_id": record["office_id"], "name": record["name"],
        "email": record.get("email"), "phone": record.get("phone"), "title": record.get("title"),
        "show_on_internet": record.get("show_on_internet", False), "images": images,
        "companies": list(record.get("companies") or ()),
        "main_company": record.get("main_company"),
        "statistics_all_companies": record.get("statistics_all_companies", False),
        "password_legacy": False, "updated_at": now,
    }


_LISTING_FIELDS = (
    "system_id", "company_id", "broker_id", "price", "living_area", "plot_area", "rooms",
    "monthly_fee", "build_year", "headline", "short_description", "description", "final_price",
    "bedrooms", "bathrooms", "description_en",
)
_WHOLE_NUMBERS = ("price", "monthly_fee", "build_year", "final_price", "bedrooms", "bathrooms")
"""JSON Schema counts 12.0 as an integer; these are stored as Python ints all the same."""
_ADDRESS_FIELDS = ("street", "postal_code", "city", "municipality", "area", "latitude", "longitude",
                   "province")
DEFAULT_COUNTRY, DEFAULT_CURRENCY = "SE", "SEK"
"""What a record without ``address.country`` or ``currency`` is: a Swedish listing in kronor."""


def _listing_row(record: dict[str, Any], selection: Sequence[str], now: datetime) -> dict[str, Any]:
    address = record.get("address") or {}
    contract = record.get("contract_date")
    row: dict[str, Any] = {
        "id": record["id"], "office_id": record["office_id"], "category": record["category"],
        "state": record["state"], "orientations": list(record.get("orientations") or ()),
        "price_type": record.get("price_type", "asking"),
        "viewings": [
            {"starts_at": _iso(v["starts_at"]), "ends_at": _iso(v.get("ends_at")),
             "note": v.get("note")}
            for v in record.get("viewings") or ()
        ],
        "marketplaces": list(selection),
        "contract_date": date.fromisoformat(contract) if contract else None,
        "send_final_price": record.get("send_final_price", False),
        "country": address.get("country") or DEFAULT_COUNTRY,
        "currency": record.get("currency") or DEFAULT_CURRENCY,
        "modified_at": timestamp(record.get("modified_at")),
        "updated_at": now,
    }
    row.update({name: record.get(name) for name in _LISTING_FIELDS})
    row.update({name: int(row[name]) for name in _WHOLE_NUMBERS if row[name] is not None})
    row.update({name: address.get(name) for name in _ADDRESS_FIELDS})
    return row


def _iso(value: str | None) -> str | None:
    stamp = timestamp(value)
    return stamp.isoformat() if stamp else None


def _image_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"listing_id": record["id"], "url": image["url"],
         "position": int(image.get("order", index)), "caption": image.get("caption"),
         "tag": image.get("tag"), "source": "desktop"}
        for index, image in enumerate(record.get("images") or ())
    ]


def _insert_for(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ConfigurationError(f"ingest supports SQLite and PostgreSQL, not {dialect}")


def _upsert(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], keep: Iterable[str] = ()
) -> None:
    """Insert ``rows`` or update them by id, in batches; columns in ``keep`` are not updated."""
    if not rows:
        return
    dialect_insert = _insert_for(session)
    table = model.__table__
    skipped = {"id", *keep}
    statement = dialect_insert(table)
    updates = {name: statement.excluded[name] for name in rows[0] if name not in skipped}
    statement = statement.on_conflict_do_update(index_elements=["id"], set_=updates)
    for chunk in _chunks(rows, BATCH_PARAMETERS // len(rows[0])):
        session.execute(statement, list(chunk))


def ingest_document(
    engine: Engine, raw: bytes, *, now: datetime | None = None, max_bytes: int = MAX_DOCUMENT_BYTES,
    refuse: Refusal | None = None, guard: Guard | None = None,
) -> IngestReport:
    """Validate the input document ``raw`` and upsert its valid records (those ``refuse``,
    when given, finds no problem with).

    The mass-deletion guard (R15, :func:`syndication.holds.guard_ingest`; ``guard``,
    default the default limit) holds, in the same transaction, the deletes the
    document would cause where they are too many at once; ``report.holds`` names them.

    Raises :class:`RecordError` (an :class:`InputError` about the ``document``) when the
    document as a whole cannot be used; otherwise returns the report of what was taken
    and every rejected record with its field.
    """
    stamp = now or utcnow()
    document = parse_document(raw, max_bytes=max_bytes)
    report = IngestReport()
    offices = _check("office", document["offices"], report, refuse)
    users = _check("user", document["users"], report, refuse)
    listings = _check("listing", document["listings"], report, refuse)

    with session_scope(engine) as session:
        named = [*users.records.values(), *listings.records.values()]
        wanted_offices = {r["office_id"] for r in named}
        stored_offices = _stored(session, OfficeRow.id, wanted_offices - set(offices.records),
                                 OfficeRow.category_defaults)
        _drop_missing(users, "user", "office_id", "office",
                      set(offices.records) | set(stored_offices), offices, report)
        _drop_missing(listings, "listing", "office_id", "office",
                      set(offices.records) | set(stored_offices), offices, report)
        brokers = {r["broker_id"] for r in listings.records.values() if r.get("broker_id")}
        stored_users = _stored(session, UserRow.id, brokers - set(users.records))
        _drop_missing(listings, "listing", "broker_id", "broker",
                      set(users.records) | set(stored_users), users, report)

        _upsert(session, OfficeRow, [_office_row(r, stamp) for r in offices.records.values()])
        _upsert(session, UserRow, [_user_row(r, stamp) for r in users.records.values()],
                keep=("password_legacy",))
        defaults = {oid: row.category_defaults or {} for oid, row in stored_offices.items()}
        defaults.update({o: r.get("category_defaults") or {} for o, r in offices.records.items()})
        existing = _stored(session, ListingRow.id, listings.records, ListingRow.marketplaces,
                           ListingRow.state)
        written: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        for record in listings.records.values():
            sent, stored = record.get("marketplaces"), existing.get(record["id"])
            office = Office(id=record["office_id"], name="",
                            category_defaults=defaults.get(record["office_id"], {}))
            selection = resolve_selection(
                sent, stored.marketplaces if stored is not None else None, office,
                record["category"],
            )
            row = _listing_row(record, selection, stamp)
            (kept if sent is None and stored is not None else written).append(row)
        _upsert(session, ListingRow, written)
        # R2 keeps the stored selection; the column is left out of the update rather than
        # rewritten with the value read, so a selection changed meanwhile is not undone.
        _upsert(session, ListingRow, kept, keep=("marketplaces",))
        ids = list(listings.records)
        for chunk in _chunks(ids, 500):
            session.execute(delete(ListingImageRow).where(
                col(ListingImageRow.listing_id).in_(chunk),
                col(ListingImageRow.source) == "desktop"))
        images = [image for record in listings.records.values() for image in _image_rows(record)]
        if images:
            session.execute(insert(ListingImageRow), images)
        before = {rid: (row.state, list(row.marketplaces or ())) for rid, row in existing.items()}
        report.holds = guard_ingest(session, guard or Guard(), before, ids, stamp)

    report.offices, report.users, report.listings = list(offices.records), list(users.records), ids
    report.created_listings = [rid for rid in ids if rid not in existing]
    get_logger(component="ingest").info(
        "ingested", offices=len(report.offices), users=len(report.users),
        listings=len(ids), rejected=report.rejected,
    )
    return report
