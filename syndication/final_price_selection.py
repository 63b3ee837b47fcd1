"""The final-price sync's selection (R7): which listings a run looks at, and its decision
for each.

**Selection** is one indexed query per kind of candidate, streamed in chunks:

* every sold listing, flag set or not (``ix_listing_final_price``), so a report explains
  each, joined with its office's settings, its broker's companies, what the sync last did
  (``final_price_sync``) and whether Hemnet itself accepted it on or before its contract
  date (a file drop's receipt, :data:`~adapters.filedrop.FILE_DROP_ID_PREFIX`, does not
  count; ``syndication final-prices --seed-hemnet`` seeds migrated listings' history);
* listings Hemnet may hold a final price of ours for whose consent is now withdrawn
  (the flag cleared, or the office setting off) and that are no longer sold.

Each candidate is then judged by the pure rule (:mod:`syndication.rules.final_price`),
which also gives the reason for every skip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    Date,
    Engine,
    Select,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased
from sqlmodel import col

from adapters.filedrop import FILE_DROP_ID_PREFIX
from feeds.common import document_hash
from feeds.hemnet_final_price import build_final_price, build_retraction
from syndication.errors import DocumentInvalid
from syndication.records import Listing, Office, User
from syndication.rules.final_price import Sent, decide, eligibility
from syndication.store.models import FinalPriceRow, ListingRow, OfficeRow, TransferEventRow, UserRow

MARKETPLACE = "hemnet"
CHUNK_SIZE = 2000
"""Rows fetched from the database at a time while streaming the selection."""
DELIVERY_ACTIONS = {
    "send": "final_price",
    "resend": "final_price",
    "retract": "final_price_retraction",
}


@dataclass(frozen=True, slots=True)
class Planned:
    """The sync's decision for one listing, as the selection saw it."""

    listing_id: str
    office_id: str
    action: str
    reason: str
    price: int | None = None
    contract_date: date | None = None
    document: bytes | None = None
    error: str | None = None

    @property
    def actionable(self) -> bool:
        return self.action in DELIVERY_ACTIONS


def _day(engine: Engine, column: Any) -> Any:
    """The date part of a stored UTC timestamp, as each backend compares it with a date."""
    return func.date(column) if engine.dialect.name == "sqlite" else cast(column, Date)


def _columns(engine: Engine) -> list[Any]:
    event = aliased(TransferEventRow)
    published = exists().where(
        col(event.listing_id) == col(ListingRow.id),
        col(event.marketplace) == MARKETPLACE,
        col(event.state).in_(("sent", "published")),
        col(event.action).in_(("create", "update")),
        or_(col(event.marketplace_id).is_(None),
            not_(col(event.marketplace_id).startswith(FILE_DROP_ID_PREFIX, autoescape=True))),
        _day(engine, col(event.at)) <= col(ListingRow.contract_date),
    )
    return [
        *(col(c) for c in (
            ListingRow.id, ListingRow.office_id, ListingRow.company_id, ListingRow.broker_id,
            ListingRow.category, ListingRow.state, ListingRow.final_price,
            ListingRow.contract_date, ListingRow.send_final_price,
            OfficeRow.company_id, OfficeRow.final_price_enabled,
            OfficeRow.hemnet_final_price_agreement,
            UserRow.companies, UserRow.main_company, UserRow.statistics_all_companies,
            FinalPriceRow.state, FinalPriceRow.sent_price, FinalPriceRow.sent_contract_date,
            FinalPriceRow.document_hash,
        )),
        published.label("published_before_sale"),
    ]


def selections(engine: Engine, listing_ids: Sequence[str] | None = None,
               office_ids: Sequence[str] | None = None) -> list[Select[Any]]:
    """The two candidate queries (see the module docstring), optionally for some listing
    ids or the listings of some offices only."""
    sold_any_flag = and_(
        col(ListingRow.send_final_price).in_((true(), false())), col(ListingRow.state) == "sold"
    )
    flagged = and_(col(ListingRow.send_final_price) == true(), col(ListingRow.state) == "sold")
    consent_withdrawn = or_(
        col(ListingRow.send_final_price) == false(), col(OfficeRow.final_price_enabled) == false()
    )
    may_hold = or_(
        col(FinalPriceRow.sent_price).is_not(None),
        col(FinalPriceRow.state).in_(("sending", "retracting", "retraction_failed")),
    )
    base = (
        select(*_columns(engine))
        .join(OfficeRow, col(OfficeRow.id) == col(ListingRow.office_id))
        .outerjoin(UserRow, col(UserRow.id) == col(ListingRow.broker_id))
    )
    on_listing = col(FinalPriceRow.listing_id) == col(ListingRow.id)
    sold = base.outerjoin(FinalPriceRow, on_listing).where(sold_any_flag)
    retract = base.join(FinalPriceRow, on_listing).where(
        not_(flagged), col(ListingRow.state) != "sold", consent_withdrawn, may_hold
    )
    if listing_ids is not None:
        sold = sold.where(col(ListingRow.id).in_(listing_ids))
        retract = retract.where(col(ListingRow.id).in_(listing_ids))
    if office_ids is not None:
        sold = sold.where(col(ListingRow.office_id).in_(office_ids))
        retract = retract.where(col(ListingRow.office_id).in_(office_ids))
    return [sold, retract]


_BY_IDS: dict[str, list[Select[Any]]] = {}


def _selections_by_ids(engine: Engine) -> list[Select[Any]]:
    """:func:`selections` of the listings the parameter ``ids`` names, built once per
    dialect (a batch of the sync runs them with its own ids)."""
    queries = _BY_IDS.get(engine.dialect.name)
    if queries is None:
        ids: Any = bindparam("ids", expanding=True)
        queries = [query.where(col(ListingRow.id).in_(ids)) for query in selections(engine)]
        _BY_IDS[engine.dialect.name] = queries
    return queries


def _judge(row: Any, documents: bool = True) -> Planned:
    """One selected row → records → the pure R7 decision, with the document it would send.

    Without ``documents`` (a run's plan, whose batches build their own) the document is
    built only where the decision needs its hash (finishing a delivery left in flight),
    so the decision is the same either way and the plan carries no document."""
    (lid, office_id, company, broker_id, category, state, final_price, contract_date, flag,
     office_company, enabled, agreement, companies, main_company, all_companies,
     last_state, sent_price, sent_date, last_hash, published) = row
    listing = Listing(
        id=lid, office_id=office_id, category=category, state=state, company_id=company,
        broker_id=broker_id, final_price=final_price, contract_date=contract_date,
        send_final_price=bool(flag),
    )
    office = Office(
        id=office_id, name=office_id, company_id=office_company,
        final_price_enabled=bool(enabled), hemnet_final_price_agreement=bool(agreement),
    )
    broker = None
    if broker_id is not None and companies is not None:
        broker = User(
            id=broker_id, office_id=office_id, name=broker_id, companies=tuple(companies),
            main_company=main_company, statistics_all_companies=bool(all_companies),
        )
    last = Sent(last_state, sent_price, sent_date, last_hash) if last_state else None
    verdict = eligibility(listing, office, broker, bool(published))
    document: bytes | None = None
    error: str | None = None
    if not documents and (last is None or last.state != "sending"):
        decision = decide(verdict, listing, office, last, "")
        return Planned(lid, office_id, decision.action, decision.reason,
                       final_price, contract_date)
    if verdict.eligible:
        try:
            document = build_final_price(listing)
        except DocumentInvalid as exc:
            error = exc.message
    elif last is not None:
        try:
            document = build_retraction(lid, office_id)
        except DocumentInvalid as exc:
            error = exc.message
    decision = decide(verdict, listing, office, last, document_hash(document or b""))
    return Planned(lid, office_id, decision.action, decision.reason,
                   final_price, contract_date, document, error)


def plan(
    engine: Engine, listing_ids: Sequence[str] | None = None, chunk_size: int = CHUNK_SIZE,
    office_ids: Sequence[str] | None = None, *, documents: bool = True,
) -> Iterator[list[Planned]]:
    """Stream the decisions for every candidate (or for ``listing_ids``, or the listings
    of ``office_ids``), a chunk at a time; without ``documents``, decisions only (see
    :func:`_judge`)."""
    params: dict[str, Any] = {}
    if listing_ids is not None and office_ids is None:
        queries, params = _selections_by_ids(engine), {"ids": list(listing_ids)}
    else:
        queries = selections(engine, listing_ids, office_ids)
    with engine.connect() as conn:
        for query in queries:
            result = conn.execution_options(stream_results=True, yield_per=chunk_size).execute(
                query, params
            )
            for rows in result.partitions():
                yield [_judge(row, documents) for row in rows]
