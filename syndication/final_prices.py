"""The nightly final-price sync to Hemnet (R7): select, decide, deliver, record.

**Selection** is one indexed query per kind of candidate, streamed in chunks:

* sold listings whose "send final price" flag is set (``ix_listing_final_price``),
  joined with their office's settings, their broker's companies, what the sync last
  did (``final_price_sync``) and, from the transfer history, whether Hemnet accepted
  the listing on or before its contract date ("published before the sale");
* listings Hemnet may hold a final price of ours for whose consent is now withdrawn
  (the flag cleared, or the office setting turned off): the retraction candidates.

Each candidate is then judged by the pure rule (:mod:`syndication.rules.final_price`),
which also gives the reason for every skip.

**Delivery** goes through the queue in batches of listing ids
(:mod:`syndication.jobs.final_prices`). :func:`process_batch` re-reads and re-decides
its listings (a message delivered twice does nothing the second time), records every
delivery as in flight (``sending``/``retracting``) *before* sending it, sends through
the Hemnet transport (which has the retries) and records the outcome after, with an
event in the transfer history (action ``final_price``). A run that dies between the
two writes leaves rows in flight; the next run sends those again with the same
idempotency key (listing, document hash and the number of deliveries Hemnet accepted
before), so Hemnet never holds a price twice. A retraction Hemnet did not know (404)
is ``retracted`` with the transfers' ``NOT_KNOWN_NOTE``, told apart from a real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Engine,
    Select,
    and_,
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
from sqlmodel import Session, col

from adapters.base import Delivery, Transport
from feeds.common import document_hash
from feeds.hemnet_final_price import build_final_price, build_retraction
from syndication.errors import DocumentInvalid, SyndicationError
from syndication.logs import get_logger
from syndication.records import Listing, Office, User
from syndication.rules.final_price import Sent, decide, eligibility
from syndication.runtime import Runtime
from syndication.store.models import (
    FinalPriceRow,
    ListingRow,
    OfficeRow,
    TransferEventRow,
    UserRow,
)
from syndication.store.repository import append_event
from syndication.transfer import NOT_KNOWN_NOTE
from syndication.transfer.keys import idempotency_key

MARKETPLACE = "hemnet"
CHUNK_SIZE = 2000
"""Rows fetched from the database at a time while streaming the selection."""
BATCH_SIZE = 100
"""Listing ids per queue message."""
IN_FLIGHT = ("sending", "retracting")
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


def new_run_id(now: datetime) -> str:
    """A run id that sorts by time: ``fp-20261124T010000-1a2b3c4d``."""
    return f"fp-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


# -- selection ---------------------------------------------------------------------


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


def selections(engine: Engine, listing_ids: Sequence[str] | None = None) -> list[Select[Any]]:
    """The two candidate queries (see the module docstring), optionally for some ids only."""
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
    sold = base.outerjoin(FinalPriceRow, on_listing).where(flagged)
    retract = base.join(FinalPriceRow, on_listing).where(not_(flagged), consent_withdrawn, may_hold)
    if listing_ids is not None:
        sold = sold.where(col(ListingRow.id).in_(listing_ids))
        retract = retract.where(col(ListingRow.id).in_(listing_ids))
    return [sold, retract]


def _judge(row: Any) -> Planned:
    """One selected row → records → the pure R7 decision, with the document it would send."""
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
    engine: Engine, listing_ids: Sequence[str] | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[list[Planned]]:
    """Stream the decisions for every candidate (or for ``listing_ids``), a chunk at a time."""
    with engine.connect() as conn:
        for query in selections(engine, listing_ids):
            result = conn.execution_options(stream_results=True, yield_per=chunk_size).execute(
                query
            )
            for rows in result.partitions():
                yield [_judge(row) for row in rows]


# -- delivery ----------------------------------------------------------------------


@dataclass
class BatchOutcome:
    """What one batch did: listing id → final sync state (``sent``, ``failed``, …)."""

    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _rows(session: Session, ids: Iterable[str]) -> dict[str, FinalPriceRow]:
    query = select(FinalPriceRow).where(col(FinalPriceRow.listing_id).in_(list(ids)))
    return {row.listing_id: row for row in session.scalars(query)}


def _record_before(session: Session, decisions: list[Planned], run_id: str, now: datetime) -> None:
    """Mark each delivery in flight, and every other listing of the batch as looked at
    by this run (a listing never recorded before gets a ``skipped`` row with the reason)."""
    rows = _rows(session, (p.listing_id for p in decisions))
    for planned in decisions:
        row = rows.get(planned.listing_id)
        if row is None:
            row = FinalPriceRow(listing_id=planned.listing_id, state="skipped", attempts=0)
            session.add(row)
        row.run_id = run_id
        if not planned.actionable:
            if row.state in IN_FLIGHT:
                row.state = "failed" if row.state == "sending" else "retraction_failed"
                row.error, row.at = f"interrupted delivery not finished: {planned.reason}", now
            elif row.state == "skipped":
                row.error, row.at = planned.reason, now
            continue
        digest = document_hash(planned.document or b"")
        row.attempts = (row.attempts or 0) + 1 if row.document_hash == digest else 1
        row.state = "retracting" if planned.action == "retract" else "sending"
        row.document_hash, row.error, row.at = digest, planned.error, now


def _record_after(session: Session, decisions: list[Planned], outcome: BatchOutcome,
                  run_id: str, now: datetime) -> None:
    rows = _rows(session, outcome.states)
    by_id = {p.listing_id: p for p in decisions}
    for listing_id, state in outcome.states.items():
        row, planned = rows[listing_id], by_id[listing_id]
        error = outcome.errors.get(listing_id)
        row.state, row.error, row.at = state, error, now
        if state == "sent":
            row.sent_price = planned.price
            row.sent_contract_date = planned.contract_date
        elif state == "retracted":
            row.sent_price, row.sent_contract_date = None, None
        history_state = {"sent": "sent", "retracted": "deleted"}.get(state, "failed")
        append_event(session, listing_id, MARKETPLACE, history_state, action="final_price",
                     attempts=row.attempts, request_id=run_id, at=now, error=error)


def process_batch(runtime: Runtime, listing_ids: Sequence[str], run_id: str) -> BatchOutcome:
    """Re-decide, record, deliver and record again for one batch of listings.

    Every listing of the batch ends with its ``final_price_sync`` row carrying
    ``run_id``, so a waiting caller can count the batch as done.
    """
    decisions = [p for chunk in plan(runtime.engine, list(listing_ids)) for p in chunk]
    seen = {p.listing_id for p in decisions}
    decisions += [
        Planned(lid, "", "none", "no longer a final-price candidate")
        for lid in dict.fromkeys(listing_ids) if lid not in seen
    ]
    with Session(runtime.engine, expire_on_commit=False) as session:
        _record_before(session, decisions, run_id, runtime.clock())
        session.commit()
    outcome = BatchOutcome()
    transport = runtime.transport(MARKETPLACE)
    actionable = [p for p in decisions if p.actionable]
    generations = _generations(runtime.engine, [p.listing_id for p in actionable])
    for planned in actionable:
        _deliver(transport, planned, outcome, generations.get(planned.listing_id, 0))
    with Session(runtime.engine, expire_on_commit=False) as session:
        _record_after(session, decisions, outcome, run_id, runtime.clock())
        session.commit()
    return outcome


def _generations(engine: Engine, listing_ids: list[str]) -> dict[str, int]:
    """How many final-price deliveries Hemnet accepted per listing (from the history)."""
    if not listing_ids:
        return {}
    query = (
        select(col(TransferEventRow.listing_id), func.count())
        .where(col(TransferEventRow.listing_id).in_(listing_ids))
        .where(col(TransferEventRow.marketplace) == MARKETPLACE)
        .where(col(TransferEventRow.action) == "final_price")
        .where(col(TransferEventRow.state).in_(("sent", "deleted")))
        .group_by(col(TransferEventRow.listing_id))
    )
    with engine.connect() as conn:
        return {listing_id: count for listing_id, count in conn.execute(query)}


def _deliver(
    transport: Transport, planned: Planned, outcome: BatchOutcome, generation: int
) -> None:
    retract = planned.action == "retract"
    log = get_logger(listing_id=planned.listing_id, marketplace=MARKETPLACE)
    failed = "retraction_failed" if retract else "failed"
    if planned.document is None:
        outcome.states[planned.listing_id] = failed
        outcome.errors[planned.listing_id] = planned.error or "no document could be built"
        return
    action = DELIVERY_ACTIONS[planned.action]
    delivery = Delivery(
        marketplace=MARKETPLACE,
        listing_id=planned.listing_id,
        office_id=planned.office_id,
        action=action,
        document=planned.document,
        idempotency_key=idempotency_key(
            planned.listing_id, MARKETPLACE, action, document_hash(planned.document), generation
        ),
    )
    try:
        receipt = transport.send(delivery)
    except SyndicationError as exc:
        log.warning("final_price_failed", action=action, error=str(exc))
        outcome.states[planned.listing_id], outcome.errors[planned.listing_id] = failed, str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - one listing's bug must not lose the batch's records
        log.exception("final_price_error", action=action)
        outcome.states[planned.listing_id] = failed
        outcome.errors[planned.listing_id] = f"unexpected error: {type(exc).__name__}: {exc}"
        return
    outcome.states[planned.listing_id] = "retracted" if retract else "sent"
    if retract and receipt.not_known:
        outcome.errors[planned.listing_id] = NOT_KNOWN_NOTE
    log.debug("final_price_delivered", action=action, price=planned.price)


# -- a run ---------------------------------------------------------------------------


@dataclass
class RunPlan:
    """What a run decided: the listings it queued and the ones it skipped, with reasons."""

    run_id: str
    queued: list[Planned] = field(default_factory=list)
    skipped: list[Planned] = field(default_factory=list)


def dispatch(
    engine: Engine,
    run_id: str,
    enqueue: Callable[[list[str], str], None] | None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> RunPlan:
    """Plan a run and hand its deliveries to ``enqueue(ids, run_id)`` in batches
    (``None``: a dry run, nothing is queued). ``progress(n)`` counts candidates judged."""
    result = RunPlan(run_id)
    batch: list[str] = []
    for chunk in plan(engine):
        for planned in chunk:
            if not planned.actionable:
                result.skipped.append(_slim(planned))
                continue
            result.queued.append(_slim(planned))
            batch.append(planned.listing_id)
            if enqueue is not None and len(batch) >= batch_size:
                enqueue(batch, run_id)
                batch = []
        if progress is not None:
            progress(len(chunk))
    if enqueue is not None and batch:
        enqueue(batch, run_id)
    return result


def _slim(planned: Planned) -> Planned:
    return Planned(planned.listing_id, planned.office_id, planned.action, planned.reason,
                   planned.price, planned.contract_date, None, planned.error)
