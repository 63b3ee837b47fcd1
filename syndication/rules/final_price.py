"""R7: which sold listings have their final price ("slutpris") sent to Hemnet, and what
the nightly sync does for one listing given what it last sent.

Two pure decisions, no I/O:

* :func:`eligibility` — may the final price of this listing go to Hemnet now? It
  lists *every* unmet condition, so support can see all that stands in the way.
* :func:`decide` — given that eligibility and what was last sent (a
  :class:`~syndication.store.models.FinalPriceRow` or anything shaped like
  :class:`LastSent`), send, resend because the price changed, retract because the
  consent was withdrawn after sending, or do nothing.

The states the sync records per listing are in :data:`SYNC_STATES`. ``sending``
and ``retracting`` are written *before* a delivery and replaced after it, so a run
that dies in between leaves a mark that the next run finishes (with the same
idempotency key, so Hemnet never holds a price twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol

from syndication.records import Listing, Office, User

FINAL_PRICE_CATEGORIES: tuple[str, ...] = ("villa", "bostadsratt", "fritidshus")
"""The categories Hemnet keeps final-price statistics for (villa, bostadsrätt, fritidshus)."""

SYNC_STATES: tuple[str, ...] = (
    "sending",
    "sent",
    "failed",
    "retracting",
    "retracted",
    "retraction_failed",
    "skipped",
)
"""What the sync last did for a listing. ``sending``/``retracting`` mean in flight."""

OFFICE_SETTING_OFF = "the office's setting 'Hemnet – slutpris' is off"
NO_AGREEMENT = "the office has no final-price agreement with Hemnet"
NOT_SOLD = "the listing is not sold"
NO_FINAL_PRICE = "the listing has no final price"
NO_CONTRACT_DATE = "the listing has no contract date"
NOT_PUBLISHED_BEFORE_SALE = (
    "sold before it was published on Hemnet (no delivery Hemnet accepted on or before the "
    "contract date; a file drop does not count)"
)
FLAG_NOT_SET = (
    "the seller and buyer have not consented (the listing's 'send final price to Hemnet' "
    "flag is not set)"
)
ALREADY_SENT = "final price already sent to Hemnet, unchanged"
ALREADY_RETRACTED = "final price already retracted from Hemnet"


def category_reason(category: str) -> str:
    return (
        f"category {category!r} has no final-price statistics on Hemnet "
        "(only villa, bostadsratt, fritidshus)"
    )


def company_reason(company: str, main_company: str | None) -> str:
    return (
        f"the listing belongs to company {company!r}, not the broker's main company "
        f"{main_company!r}, and the broker's setting 'transfer statistics for objects of all "
        "my companies' is off"
    )


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Whether a listing's final price may go to Hemnet; ``reasons`` lists every unmet condition."""

    eligible: bool
    reasons: list[str] = field(default_factory=list)


def consent_given(listing: Listing, office: Office) -> bool:
    """The seller's and buyer's consent: the listing's flag, which counts only while
    the office's "Hemnet – slutpris" setting is on (the desktop offers it only then)."""
    return office.final_price_enabled and listing.send_final_price


def company_allows(listing: Listing, office: Office, broker: User | None) -> str | None:
    """The company rule; ``None`` when it allows the listing, else the reason it does not.

    A broker of one company (or none recorded) sends every listing. A broker of several
    internal companies sends the listings of the main company, and of the others only
    with the "transfer statistics for objects of all my companies" setting on. A listing
    without a company of its own belongs to its office's company.
    """
    company = listing.company_id or office.company_id
    if broker is None:
        return None
    if len(set(broker.companies)) <= 1 or company is None:
        return None
    if company == broker.main_company or broker.statistics_all_companies:
        return None
    return company_reason(company, broker.main_company)


def eligibility(
    listing: Listing,
    office: Office,
    broker: User | None,
    published_on_hemnet_before_sale: bool,
) -> Eligibility:
    """Every R7 condition for sending ``listing``'s final price, checked independently.

    ``published_on_hemnet_before_sale`` comes from the transfer history: the listing
    was accepted by Hemnet (for sale or coming) on or before its contract date.
    """
    reasons: list[str] = []
    if not office.final_price_enabled:
        reasons.append(OFFICE_SETTING_OFF)
    if not office.hemnet_final_price_agreement:
        reasons.append(NO_AGREEMENT)
    if listing.state != "sold":
        reasons.append(NOT_SOLD)
    if listing.final_price is None or listing.final_price <= 0:
        reasons.append(NO_FINAL_PRICE)
    if listing.contract_date is None:
        reasons.append(NO_CONTRACT_DATE)
    if not published_on_hemnet_before_sale:
        reasons.append(NOT_PUBLISHED_BEFORE_SALE)
    if not listing.send_final_price:
        reasons.append(FLAG_NOT_SET)
    if listing.category not in FINAL_PRICE_CATEGORIES:
        reasons.append(category_reason(listing.category))
    company = company_allows(listing, office, broker)
    if company is not None:
        reasons.append(company)
    return Eligibility(eligible=not reasons, reasons=reasons)


class LastSent(Protocol):
    """What the sync last did for a listing (a ``FinalPriceRow`` fits).

    ``sent_price``/``sent_contract_date`` are what Hemnet last *accepted* (``None`` when
    it holds nothing, e.g. after a retraction); ``document_hash`` is the hash of the last
    document *attempted*, in flight or done.
    """

    @property
    def state(self) -> str: ...
    @property
    def sent_price(self) -> int | None: ...
    @property
    def sent_contract_date(self) -> date | None: ...
    @property
    def document_hash(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Sent:
    """A plain :class:`LastSent`, for tests and callers without a row."""

    state: str
    sent_price: int | None = None
    sent_contract_date: date | None = None
    document_hash: str | None = None


Action = Literal["send", "resend", "retract", "none"]


@dataclass(frozen=True, slots=True)
class FinalPriceDecision:
    """What to do for one listing, and why (the reason is shown by ``--dry-run``)."""

    action: Action
    reason: str


def hemnet_may_hold(last: LastSent | None) -> bool:
    """Whether Hemnet may hold a final price of ours: one was accepted and not retracted,
    or a delivery or retraction was in flight or failed when we last looked."""
    if last is None:
        return False
    in_flight = last.state in ("sending", "retracting", "retraction_failed")
    return last.sent_price is not None or in_flight


def decide(
    verdict: Eligibility,
    listing: Listing,
    office: Office,
    last: LastSent | None,
    document_hash: str,
) -> FinalPriceDecision:
    """The sync's action for one listing.

    Eligible: send when Hemnet holds nothing of ours; resend when it holds another
    price or contract date, or the last attempt failed; finish an interrupted delivery
    of the same document; otherwise nothing. Not eligible: retract when the consent
    (the flag, or the office setting it depends on) was withdrawn and Hemnet may hold
    our price; otherwise nothing, with the eligibility reasons. ``document_hash`` is the
    hash of the final-price document the listing would get now.
    """
    if verdict.eligible:
        if last is None or (last.state in ("retracted", "skipped") and last.sent_price is None):
            return FinalPriceDecision("send", "eligible; not sent before")
        if last.state == "sending" and last.document_hash == document_hash:
            return FinalPriceDecision("send", "finishing a delivery an earlier run left in flight")
        unchanged = (last.sent_price, last.sent_contract_date) == (
            listing.final_price,
            listing.contract_date,
        )
        if last.state == "sent" and unchanged:
            return FinalPriceDecision("none", ALREADY_SENT)
        if last.sent_price is None:
            why = "the last attempt failed" if last.state == "failed" else "not accepted before"
            return FinalPriceDecision("send", f"eligible; {why}")
        if unchanged:
            return FinalPriceDecision("resend", "eligible; the last attempt did not finish")
        return FinalPriceDecision(
            "resend",
            f"final price changed from {last.sent_price} ({last.sent_contract_date}) to "
            f"{listing.final_price} ({listing.contract_date})",
        )
    if not consent_given(listing, office):
        if hemnet_may_hold(last):
            return FinalPriceDecision("retract", "consent withdrawn after the final price was sent")
        if last is not None and last.state == "retracted":
            return FinalPriceDecision("none", ALREADY_RETRACTED)
    return FinalPriceDecision("none", "; ".join(verdict.reasons))
