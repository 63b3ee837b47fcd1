"""The promise every hostile record is held to, as reusable checks.

A record either ingests and yields, for every marketplace, a document that
validates against that marketplace's XSD (or a list of unmet preconditions
saying why nothing would be sent), or it is rejected with a message that names
the record and the field. Whatever happens, nothing already stored is lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine

from feeds.validate import parse_untrusted, validate
from syndication import registry
from syndication.errors import InputError
from syndication.ingest import IngestReport, ingest_document
from syndication.records import FeedInput
from syndication.store.db import session_scope
from syndication.store.repository import load_feed_input, load_feed_inputs

RECORD_NAME = re.compile(r"^(listing|office|user) ('[^']*'|#\d+)$")


def ingest(engine: Engine, document: dict[str, Any] | bytes) -> IngestReport:
    """Ingest ``document`` (encoded as ASCII-escaped JSON when given as a dict, so lone
    surrogates and control characters travel as the desktop's JSON would carry them).

    A document refused as a whole (``ingest_document`` raises an :class:`InputError`
    about the ``document``) comes back as a report holding that one error.
    """
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    try:
        return ingest_document(engine, raw)
    except InputError as exc:
        assert exc.record == "document", f"only a whole document may be refused by raising: {exc}"
        return IngestReport(errors=[exc], rejected=1)  # type: ignore[list-item]


def snapshot(engine: Engine, listing_ids: Iterable[str]) -> dict[str, FeedInput]:
    """What the store holds for ``listing_ids`` (with office and broker), for before/after."""
    with session_scope(engine) as session:
        return load_feed_inputs(session, list(listing_ids))


def assert_explained(report: IngestReport) -> None:
    """Every rejection names its record (``listing 'X'``, ``listing #3`` or the document)
    and the field when one field is at fault; the message is short and printable."""
    for error in report.errors:
        text = str(error)
        assert error.record == "document" or RECORD_NAME.match(error.record or ""), text
        assert error.message and len(text) < 2_000, text[:300]
        assert text.isprintable(), repr(text[:300])


def errors_about(report: IngestReport, listing_id: str) -> list[InputError]:
    """The rejections of the listing ``listing_id``."""
    return [e for e in report.errors if (e.record or "").startswith(f"listing '{listing_id}'")]


def rejected(report: IngestReport, listing_id: str) -> bool:
    """True when ``report`` rejected the listing ``listing_id`` (or the whole document)."""
    return any(
        error.record == "document" or (error.record or "").startswith(f"listing '{listing_id}'")
        for error in report.errors
    )


def assert_documents_valid(engine: Engine, listing_id: str) -> dict[str, bytes]:
    """Build every marketplace's documents for a stored listing and check each against its XSD.

    Returns the create/update documents by marketplace; a marketplace whose
    preconditions are unmet must say which, in words, and builds nothing.
    """
    with session_scope(engine) as session:
        feed_input = load_feed_input(session, listing_id)
    assert feed_input is not None, f"listing {listing_id!r} was reported taken but is not stored"
    documents: dict[str, bytes] = {}
    for name in registry.names():
        marketplace = registry.get(name)
        unmet = marketplace.preconditions(feed_input)
        assert all(isinstance(item, str) and item.strip() for item in unmet), unmet
        if not marketplace.pull:
            delete = marketplace.build_delete(feed_input, "withdrawn")
            validate(marketplace.schema, delete)
        if unmet:
            continue
        document = marketplace.build(feed_input)
        validate(marketplace.schema, document)
        parse_untrusted(document, f"{name} document")
        assert b"<!DOCTYPE" not in document and b"<!ENTITY" not in document
        documents[name] = document
    return documents
