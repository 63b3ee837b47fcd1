"""Ingest: the desktop's input document into the store, record by record.

The document is ``{"offices": [...], "users": [...], "listings": [...]}``
(``schemas/records.schema.json``). :func:`ingest_document` reads it defensively
(a size limit, nesting too deep to read, invalid UTF-8, NaN: each one clear
error about the document), validates every record on its own with the JSON
Schema and with the checks a schema cannot express (the office and broker a
record names exist in the document or the store, orientations only on farms,
…), and upserts the valid records by id in batches, offices before users
before listings, in one transaction. A bad record is reported as
``listing 'OBJ1': field 'price': …`` and left out; the stored copy of it, and
everything else, stays as it was.

An upsert replaces what the desktop owns and keeps what it does not:

* a user's password (set through ``syndication users``) is kept;
* a listing's images from the desktop are replaced, images added by the photo
  module (``source = portal``) are kept;
* a listing's marketplace selection follows R2: a listing sent without
  ``marketplaces`` keeps its stored selection, and a new one gets its office's
  defaults for its category (:func:`syndication.rules.selection.defaults_at_creation`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from syndication.errors import ConfigurationError, InputError
from syndication.logs import get_logger
from syndication.records import Office
from syndication.rules.selection import defaults_at_creation, ordered
from syndication.store.db import session_scope
from syndication.store.models import ListingImageRow, ListingRow, OfficeRow, UserRow, utcnow

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""Largest document accepted (64 MiB, about 50 000 listings with long texts)."""

MAX_RECORD_DEPTH = 8
"""Deepest nesting of objects and arrays inside one record; the schema needs 3."""

BATCH_PARAMETERS = 15_000
"""Bound parameters per statement: rows per batch = this // columns (SQLite allows 32 766)."""

KINDS = (("offices", "office"), ("users", "user"), ("listings", "listing"))

log = get_logger(component="ingest")


class RecordError(InputError):
    """One problem with one record: ``listing 'OBJ1': field 'price': must be a number``."""

    def __str__(self) -> str:
        parts = [self.record or "document"]
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join([*parts, self.message])


@dataclass
class IngestReport:
    """What an ingest took and what it rejected, per kind of record."""

    offices: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    listings: list[str] = field(default_factory=list)
    created_listings: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    rejected: int = 0

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


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the input document, from ``schemas/records.schema.json``."""
    from schemas import path

    with path("records.schema.json").open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def _ecma_pattern(validator: Any, pattern: str, instance: Any, _: Any) -> Iterator[ValidationError]:
    """``pattern`` with ECMA-262 semantics for ``$`` (end of input): Python's ``$`` also
    matches before a final newline, which would let ``"OBJ1\\n"`` pass as an id."""
    if not validator.is_type(instance, "string"):
        return
    ends = pattern.endswith("$") and not pattern.endswith("\\$")
    if re.search(pattern[:-1] + r"\Z" if ends else pattern, instance) is None:
        yield ValidationError(f"does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@cache
def _validator(kind: str) -> Any:
    """A validator for one record of ``kind`` (``office``, ``user``, ``listing``), or of the
    document's outer shape (``document``: the arrays, not their records)."""
    full = schema()
    if kind == "document":
        shape = dict(full)
        shape["properties"] = {
            name: {k: v for k, v in spec.items() if k != "items"}
            for name, spec in full["properties"].items()
        }
        return _Validator(shape, format_checker=Draft202012Validator.FORMAT_CHECKER)
    one = {"$schema": full["$schema"], "$defs": full["$defs"], "$ref": f"#/$defs/{kind}"}
    return _Validator(one, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_document(raw: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, list[Any]]:
    """The document as ``{kind: [records]}``; :class:`RecordError` about the document when it
    cannot be used at all (too large, not UTF-8, not JSON, nested too deeply, wrong shape)."""

    def unusable(message: str) -> RecordError:
        return RecordError(message, record="document")

    if len(raw) > max_bytes:
        raise unusable(f"is {len(raw)} bytes; at most {max_bytes} are accepted")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise unusable(f"is not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise unusable(f"is not valid JSON: {exc.msg} at {where}") from None
    except ValueError as exc:
        raise unusable(f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise unusable("is nested too deeply to read") from None
    errors = sorted(_validator("document").iter_errors(data), key=lambda e: list(e.path))
    if errors:
        field_name, message = _explain(errors[0])
        raise RecordError(message, record="document", field=field_name or None)
    return {name: data.get(name, []) for name, _ in KINDS}


def _too_deep(record: dict[str, Any], limit: int) -> str | None:
    """The field of ``record`` that nests objects and arrays deeper than ``limit``, or
    ``None`` (checked without recursion, so any depth is safe)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, key) for key, value in record.items()]
    while stack:
        item, depth, top = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return top
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1, top) for child in children)
    return None


def _show(value: Any, limit: int = 60) -> str:
    """A short, printable rendering of a value for a message (control characters escaped)."""
    text = repr(value[: limit + 1]) if isinstance(value, str) else json.dumps(value)[: limit + 1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
               int: "a number", float: "a number", type(None): "null"}
_SCHEMA_TYPES = {"object": "an object", "array": "an array", "string": "a string",
                 "boolean": "true or false", "integer": "a whole number", "number": "a number",
                 "null": "null"}


def _printable(text: str, limit: int = 80) -> str:
    """``text`` with every unprintable character escaped (an escape sequence from the input
    must never reach a terminal), cut to ``limit`` characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown if len(text) <= limit else shown + "…"


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        name = _printable(str(part))
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogates(record: Any) -> Iterator[str]:
    """The paths of the strings (and keys) in ``record`` holding lone UTF-16 surrogates, which
    JSON's ``\\udXXX`` escapes can produce but no text can carry."""
    stack: list[tuple[Any, list[Any]]] = [(record, [])]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and _SURROGATE.search(item):
            yield _path(where)
        elif isinstance(item, dict):
            for key, value in item.items():
                if _SURROGATE.search(key):
                    yield _path([*where, key])
                else:
                    stack.append((value, [*where, key]))
        elif isinstance(item, list):
            stack.extend((value, [*where, index]) for index, value in enumerate(item))


def _explain(error: ValidationError) -> tuple[str, str]:
    """``(field, message)`` for one schema error, without echoing huge values."""
    where, value = list(error.absolute_path), error.instance
    rule, limit = error.validator, error.validator_value
    if rule == "required":
        missing = next((name for name in limit if name not in value), "?")
        return _path([*where, missing]), "is required"
    if rule == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extra = sorted(name for name in value if name not in known)
        return _path([*where, extra[0] if extra else "?"]), "is not a known field"
    if rule == "type":
        names = [limit] if isinstance(limit, str) else limit
        wanted = " or ".join(_SCHEMA_TYPES.get(name, name) for name in names)
        return _path(where), f"must be {wanted}, not {_JSON_TYPES.get(type(value), 'that')}"
    if rule == "maxLength":
        return _path(where), f"is too long ({len(value)} characters; at most {limit})"
    if rule == "minLength":
        return _path(where), "must not be empty"
    if rule == "pattern":
        return _path(where), f"{_show(value)} is not in the expected form"
    if rule == "enum":
        return _path(where), f"{_show(value)} is not one of: {', '.join(map(str, limit))}"
    if rule == "format":
        return _path(where), f"{_show(value)} is not a valid {limit}"
    if rule in ("minimum", "maximum"):
        word = "less than the minimum" if rule == "minimum" else "more than the maximum"
        return _path(where), f"{_show(value)} is {word} {limit}"
    if rule == "maxItems":
        return _path(where), f"has {len(value)} items; at most {limit} are allowed"
    if rule == "uniqueItems":
        return _path(where), "lists the same value twice"
    return _path(where), _printable(error.message, 200)



def _record_name(kind: str, index: int, record: Any) -> str:
    """``listing 'OBJ1'`` when the record has a valid id, else ``listing #3`` (1-based)."""
    rid = record.get("id") if isinstance(record, dict) else None
    if rid is not None and _validator("id").is_valid(rid):
        return f"{kind} {rid!r}"
    return f"{kind} #{index + 1}"


_RANK = {name: rank for rank, name in enumerate(("type", "required", "maxLength", "maxItems"))}
"""Which error to report when one field breaks several rules: the most basic first."""


def _schema_errors(kind: str, name: str, record: Any) -> list[RecordError]:
    """Every schema error of one record, at most one per field, in document order."""
    if not isinstance(record, dict):
        return [RecordError(f"must be an object, not {_JSON_TYPES.get(type(record), 'that')}",
                            record=name)]
    deep = _too_deep(record, MAX_RECORD_DEPTH)
    if deep is not None:
        return [RecordError(f"is nested deeper than {MAX_RECORD_DEPTH} levels", record=name,
                            field=_printable(deep))]
    found: dict[str, RecordError] = {
        where: RecordError("holds a lone surrogate escape (\\ud800–\\udfff), which is not text",
                           record=name, field=where or None)
        for where in _surrogates(record)
    }
    ranked = sorted(_validator(kind).iter_errors(record),
                    key=lambda e: (e.json_path, _RANK.get(str(e.validator), len(_RANK))))
    for error in ranked:
        field_name, message = _explain(error)
        found.setdefault(field_name, RecordError(message, record=name, field=field_name or None))
    return list(found.values())


def _semantic_errors(kind: str, name: str, record: dict[str, Any]) -> list[RecordError]:
    """Checks a schema cannot express, within one (schema-valid) record."""
    errors: list[RecordError] = []
    if kind == "listing":
        if record.get("orientations") and record["category"] != "lantbruk":
            errors.append(RecordError(
                f"only farms (category lantbruk) have orientations; this is {record['category']}",
                record=name, field="orientations"))
        for i, viewing in enumerate(record.get("viewings") or ()):
            for key in ("starts_at", "ends_at"):
                if viewing.get(key) and _timestamp(viewing[key]) is None:
                    errors.append(RecordError(f"{_show(viewing[key])} is not a date and time with "
                                              "a UTC offset", record=name,
                                              field=f"viewings[{i}].{key}"))
            start, end = _timestamp(viewing["starts_at"]), _timestamp(viewing.get("ends_at"))
            if start and end and end < start:
                errors.append(RecordError("ends before it starts", record=name,
                                          field=f"viewings[{i}].ends_at"))
        if record.get("contract_date"):
            try:
                date.fromisoformat(record["contract_date"])
            except ValueError:
                errors.append(RecordError(f"{_show(record['contract_date'])} is not a date",
                                          record=name, field="contract_date"))
    if kind == "user":
        main, companies = record.get("main_company"), record.get("companies") or []
        if main and companies and main not in companies:
            errors.append(RecordError(f"{main!r} is not one of the user's companies",
                                      record=name, field="main_company"))
    return errors


def _timestamp(value: str | None) -> datetime | None:
    """An RFC 3339 date-time with its offset, or ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass
class _Checked:
    """The valid records of one kind, by id, in document order."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected_ids: set[str] = field(default_factory=set)


def _check(kind: str, records: Sequence[Any], report: IngestReport) -> _Checked:
    """Validate each record of ``kind``; keep the valid ones, report the others."""
    checked = _Checked()
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        name = _record_name(kind, index, record)
        errors = _schema_errors(kind, name, record)
        if not errors:
            errors = _semantic_errors(kind, name, record)
        rid = record.get("id") if isinstance(record, dict) else None
        if not errors and rid in seen:
            errors = [RecordError(f"appears twice in the document (first as {kind} "
                                  f"#{seen[rid] + 1}, which was taken)", record=name, field="id")]
        if errors:
            report.errors.extend(errors)
            report.rejected += 1
            if isinstance(rid, str):
                checked.rejected_ids.add(rid)
            continue
        seen[rid] = index
        checked.records[rid] = record
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
         "to_internet": image.get("to_internet", False), "order": image.get("order", index)}
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
)
_ADDRESS_FIELDS = ("street", "postal_code", "city", "municipality", "area", "latitude", "longitude")


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
        "updated_at": now,
    }
    row.update({name: record.get(name) for name in _LISTING_FIELDS})
    row.update({name: address.get(name) for name in _ADDRESS_FIELDS})
    return row


def _iso(value: str | None) -> str | None:
    stamp = _timestamp(value)
    return stamp.isoformat() if stamp else None


def _image_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"listing_id": record["id"], "url": image["url"], "position": image.get("order", index),
         "caption": image.get("caption"), "tag": image.get("tag"), "source": "desktop"}
        for index, image in enumerate(record.get("images") or ())
    ]


def _insert_for(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        raise ConfigurationError(f"ingest supports SQLite and PostgreSQL, not {dialect}")
    return dialect_insert


def _upsert(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], keep: Iterable[str] = ()
) -> None:
    """Insert ``rows`` or update them by id, in batches; columns in ``keep`` are not updated."""
    if not rows:
        return
    dialect_insert = _insert_for(session)
    table = model.__table__
    skipped = {"id", *keep}
    for chunk in _chunks(rows, BATCH_PARAMETERS // len(rows[0])):
        statement = dialect_insert(table).values(list(chunk))
        updates = {name: statement.excluded[name] for name in chunk[0] if name not in skipped}
        session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=updates))


def ingest_document(
    engine: Engine, raw: bytes, *, now: datetime | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
) -> IngestReport:
    """Validate the input document ``raw`` and upsert its valid records.

    Raises :class:`RecordError` (an :class:`InputError` about the ``document``) when the
    document as a whole cannot be used; otherwise returns the report of what was taken
    and every rejected record with its field.
    """
    stamp = now or utcnow()
    document = parse_document(raw, max_bytes=max_bytes)
    report = IngestReport()
    offices = _check("office", document["offices"], report)
    users = _check("user", document["users"], report)
    listings = _check("listing", document["listings"], report)

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
        existing = _stored(session, ListingRow.id, listings.records)
        chosen, unchosen = [], []
        for record in listings.records.values():
            if record.get("marketplaces") is not None:
                chosen.append(_listing_row(record, ordered(record["marketplaces"]), stamp))
                continue
            office = Office(id=record["office_id"], name="",
                            category_defaults=defaults.get(record["office_id"], {}))
            selection = defaults_at_creation(office, record["category"])
            unchosen.append(_listing_row(record, selection, stamp))
        _upsert(session, ListingRow, chosen)
        _upsert(session, ListingRow, unchosen, keep=("marketplaces",))
        ids = list(listings.records)
        for chunk in _chunks(ids, 500):
            session.execute(delete(ListingImageRow).where(
                ListingImageRow.listing_id.in_(chunk),  # type: ignore[attr-defined]
                ListingImageRow.source == "desktop"))
        images = [image for record in listings.records.values() for image in _image_rows(record)]
        if images:
            session.execute(insert(ListingImageRow), images)

    report.offices, report.users, report.listings = list(offices.records), list(users.records), ids
    report.created_listings = [rid for rid in ids if rid not in existing]
    log.info("ingested", offices=len(report.offices), users=len(report.users),
             listings=len(ids), rejected=report.rejected)
    return report
