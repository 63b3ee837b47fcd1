"""Full-feed export: every listing of an office that a transfer would publish, in one document.

The export streams: listing ids are read from the store in chunks
(``yield_per``), each chunk's listings are loaded with their office and broker
and their stored status, and each listing element is written with lxml's
incremental writer (``etree.xmlfile``) as soon as it is built. Nothing holds
more than one chunk, so memory stays flat however large the office grows.

Which listings go in is the transfer decision itself
(:func:`syndication.rules.plan.decide`): a listing goes in when the next
transfer would create or update it there, and it meets the marketplace's
preconditions (R12). Each listing element is validated against the XSD inside
a one-listing feed before it is written, so the whole document validates. A
feed module may open the feed with header elements (``feed_header``, Kyero's
``<kyero>``), written once before the listings and validated with each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

from lxml import etree
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col
from tqdm import tqdm

from feeds.validate import validate_element
from syndication import registry
from syndication.errors import InputError, PermanentError
from syndication.records import FeedInput, TransferStatus
from syndication.store.models import ListingRow, OfficeRow, TransferStatusRow
from syndication.store.repository import load_feed_inputs, status_record
from syndication.transfer.outgoing import outgoing

CHUNK = 200
"""Listings read from the store (and held in memory) at a time."""

PROGRESS_FROM = 1000
"""Offices with at least this many listings get a progress bar on stderr."""


@dataclass
class ExportReport:
    """What an export wrote and what it left out, and why."""

    marketplace: str
    office_id: str
    written: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: int = 0
    listing_ids: list[str] = field(default_factory=list)
    """The listings written, in feed order (a pull marketplace's feed job records these)."""


def _chunks(session: Session, office_id: str, size: int) -> Iterator[list[str]]:
    """The office's listing ids in id order, ``size`` at a time, from a streamed query."""
    query = (
        select(col(ListingRow.id))
        .where(col(ListingRow.office_id) == office_id)
        .order_by(col(ListingRow.id))
    )
    result = session.execute(query.execution_options(yield_per=size))
    for partition in result.partitions(size):
        yield [row[0] for row in partition]


def _statuses(session: Session, ids: list[str], marketplace: str) -> dict[str, TransferStatus]:
    rows = session.scalars(
        select(TransferStatusRow).where(
            col(TransferStatusRow.listing_id).in_(ids),
            col(TransferStatusRow.marketplace) == marketplace,
        )
    )
    return {row.listing_id: status_record(row) for row in rows}


def exclusion(
    feed_input: FeedInput, marketplace: str, current: TransferStatus | None
) -> str | None:
    """Why the next transfer would not publish ``feed_input`` there, or ``None`` when it would
    (the transfer's own answer, :func:`~syndication.transfer.outgoing.outgoing`)."""
    planned = outgoing(feed_input, marketplace, current, build=False)
    if planned.decision.action not in ("create", "update"):
        return planned.decision.reason
    return str(planned.failure) if planned.failure is not None else None


def export_office(
    engine: Engine,
    marketplace: str,
    office_id: str,
    out: IO[bytes],
    *,
    chunk: int = CHUNK,
    progress: bool = True,
) -> ExportReport:
    """Write the full feed of ``office_id`` for ``marketplace`` to the binary stream ``out``.

    Raises :class:`UnknownMarketplace` and :class:`InputError` (no such office)
    before anything is written. A listing whose document cannot be built (an
    input error, a document that does not validate) is left out and named in
    the report, like one that would not be published.
    """
    entry = registry.get(marketplace)
    report = ExportReport(marketplace, office_id)
    with Session(engine) as session:
        if session.get(OfficeRow, office_id) is None:
            raise InputError("no such office in the store", record=f"office '{office_id}'")
        total = session.scalar(
            select(func.count())
            .select_from(ListingRow)
            .where(col(ListingRow.office_id) == office_id)
        )
        bar = tqdm(
            total=total,
            unit="listing",
            desc=f"{entry.title} feed",
            disable=not progress or (total or 0) < PROGRESS_FROM,
            leave=False,
        )
        with bar, etree.xmlfile(out, encoding="UTF-8") as xf, ExitStack() as stack:
            xf.write_declaration()
            containers = entry.feed_root(office_id)
            for tag, attrib in containers:
                stack.enter_context(xf.element(tag, attrib))
            for element in entry.feed_header(office_id):
                xf.write(element, pretty_print=True)
            for ids in _chunks(session, office_id, chunk):
                inputs = load_feed_inputs(session, ids)
                statuses = _statuses(session, ids, marketplace)
                for listing_id in ids:
                    element = _element(report, entry, inputs.get(listing_id), statuses)
                    if element is not None:
                        xf.write(element, pretty_print=True)
                        report.written += 1
                        report.listing_ids.append(listing_id)
                    elif listing_id not in report.skipped:
                        report.skipped[listing_id] = "not found with its office"
                bar.update(len(ids))
                session.expunge_all()
    return report


def _element(
    report: ExportReport,
    entry: registry.Marketplace,
    feed_input: FeedInput | None,
    statuses: dict[str, TransferStatus],
) -> etree._Element | None:
    """The validated listing element, or ``None`` with the reason recorded in ``report``."""
    if feed_input is None:
        return None
    listing_id = feed_input.listing.id
    reason = exclusion(feed_input, entry.name, statuses.get(listing_id))
    if reason is not None:
        report.skipped[listing_id] = reason
        return None
    doc = entry.new_document(listing_id)
    try:
        element = entry.listing_element(doc, feed_input)
        _validate_entry(entry, feed_input, element)
    except PermanentError as exc:
        report.skipped[listing_id] = str(exc)
        return None
    report.warnings += len(doc.warnings)
    return element


def _validate_entry(entry: registry.Marketplace, fi: FeedInput, element: Any) -> None:
    """Validate ``element`` inside a one-listing feed (then detach it again)."""
    containers = entry.feed_root(fi.office.id)
    outer = etree.Element(containers[0][0], containers[0][1])
    inner = outer
    for tag, attrib in containers[1:]:
        inner = etree.SubElement(inner, tag, attrib)
    inner.extend(entry.feed_header(fi.office.id))
    inner.append(element)
    try:
        validate_element(entry.schema, outer, listing_id=fi.listing.id, marketplace=entry.name)
    finally:
        inner.remove(element)
