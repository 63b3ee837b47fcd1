"""R7 final-price eligibility and the sync decision, branch by branch and by property."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndication.records import CATEGORIES, LISTING_STATES, Listing, Office, User
from syndication.rules import final_price as r7
from syndication.rules.final_price import Sent, decide, eligibility

OFFICE = factories.office_record(
    company_id="C1",
    final_price_enabled=True,
    hemnet_final_price_agreement=True,
)
BROKER = factories.user_record(companies=("C1",), main_company="C1")
LISTING = factories.listing_record(
    category="villa",
    state="sold",
    company_id="C1",
    broker_id=BROKER.id,
    final_price=4_250_000,
    contract_date=date(2026, 10, 3),
    send_final_price=True,
)


def test_the_reference_listing_is_eligible() -> None:
    assert eligibility(LISTING, OFFICE, BROKER, True) == r7.Eligibility(True, [])


@pytest.mark.parametrize(
    ("listing", "office", "published", "reason"),
    [
        (LISTING, replace(OFFICE, final_price_enabled=False), True, r7.OFFICE_SETTING_OFF),
        (LISTING, replace(OFFICE, hemnet_final_price_agreement=False), True, r7.NO_AGREEMENT),
        (replace(LISTING, state="for_sale"), OFFICE, True, r7.NOT_SOLD),
        (replace(LISTING, state="coming"), OFFICE, True, r7.NOT_SOLD),
        (replace(LISTING, state="withdrawn"), OFFICE, True, r7.NOT_SOLD),
        (replace(LISTING, final_price=None), OFFICE, True, r7.NO_FINAL_PRICE),
        (replace(LISTING, final_price=0), OFFICE, True, r7.NO_FINAL_PRICE),
        (replace(LISTING, contract_date=None), OFFICE, True, r7.NO_CONTRACT_DATE),
        (LISTING, OFFICE, False, r7.NOT_PUBLISHED_BEFORE_SALE),
        (replace(LISTING, send_final_price=False), OFFICE, True, r7.FLAG_NOT_SET),
    ],
    ids=[
        "office-setting-off",
        "no-agreement",
        "for-sale",
        "coming",
        "withdrawn",
        "no-final-price",
        "zero-final-price",
        "no-contract-date",
        "not-published-before-sale",
        "flag-not-set",
    ],
)
def test_each_unmet_condition_alone_makes_it_ineligible(
    listing: Listing, office: Office, published: bool, reason: str
) -> None:
    assert eligibility(listing, office, BROKER, published) == r7.Eligibility(False, [reason])


def test_the_office_setting_is_off_by_default() -> None:
    default_office = Office(id="K2", name="Nytt kontor", hemnet_final_price_agreement=True)
    verdict = eligibility(replace(LISTING, office_id="K2"), default_office, BROKER, True)
    assert verdict.reasons == [r7.OFFICE_SETTING_OFF]


def test_the_flag_counts_only_while_the_office_setting_is_on() -> None:
    office_off = replace(OFFICE, final_price_enabled=False)
    assert not r7.consent_given(LISTING, office_off)
    assert r7.consent_given(LISTING, OFFICE)
    assert not r7.consent_given(replace(LISTING, send_final_price=False), OFFICE)


@pytest.mark.parametrize("category", CATEGORIES)
def test_only_villa_bostadsratt_and_fritidshus(category: str) -> None:
    verdict = eligibility(replace(LISTING, category=category), OFFICE, BROKER, True)
    if category in ("villa", "bostadsratt", "fritidshus"):
        assert verdict.eligible
    else:
        assert verdict.reasons == [r7.category_reason(category)]


MULTI = replace(BROKER, companies=("C1", "C2"), main_company="C1")


@pytest.mark.parametrize(
    ("broker", "company", "eligible"),
    [
        (BROKER, "C1", True),  # one company: every listing
        (BROKER, "C2", True),  # one company recorded: the rule does not apply
        (MULTI, "C1", True),  # main company
        (MULTI, "C2", False),  # other company, setting off
        (replace(MULTI, statistics_all_companies=True), "C2", True),  # other company, setting on
        (MULTI, None, True),  # no company on the listing: the office's (C1, the main one)
        (None, "C2", True),  # no broker: nothing to restrict by
        (replace(MULTI, companies=("C1", "C1")), "C2", True),  # duplicates are one company
    ],
    ids=[
        "single-main",
        "single-other",
        "multi-main",
        "multi-other-off",
        "multi-other-on",
        "multi-office-company",
        "no-broker",
        "duplicate-companies",
    ],
)
def test_company_rule(broker: User | None, company: str | None, eligible: bool) -> None:
    verdict = eligibility(replace(LISTING, company_id=company), OFFICE, broker, True)
    assert verdict.eligible is eligible
    if not eligible:
        assert verdict.reasons == [r7.company_reason("C2", "C1")]


def test_listing_without_company_uses_the_office_company_for_the_rule() -> None:
    office_c2 = replace(OFFICE, company_id="C2")
    verdict = eligibility(replace(LISTING, company_id=None), office_c2, MULTI, True)
    assert verdict.reasons == [r7.company_reason("C2", "C1")]


def test_every_unmet_condition_is_listed() -> None:
    nothing = factories.listing_record("O9", office_id="K9", category="tomt", state="for_sale")
    verdict = eligibility(nothing, factories.office_record("K9"), None, False)
    assert not verdict.eligible and len(verdict.reasons) == 8


# -- the sync decision --------------------------------------------------------------

HASH = "h-new"
SENT = Sent("sent", LISTING.final_price, LISTING.contract_date, "h-old")
ELIGIBLE = r7.Eligibility(True, [])
WITHDRAWN = replace(LISTING, send_final_price=False)


def _decide(listing: Listing, last: Sent | None, office: Office = OFFICE) -> r7.FinalPriceDecision:
    return decide(eligibility(listing, office, BROKER, True), listing, office, last, HASH)


@pytest.mark.parametrize(
    ("listing", "last", "office", "action"),
    [
        (LISTING, None, OFFICE, "send"),
        (LISTING, SENT, OFFICE, "none"),
        (replace(LISTING, final_price=4_300_000), SENT, OFFICE, "resend"),
        (replace(LISTING, contract_date=date(2026, 10, 4)), SENT, OFFICE, "resend"),
        (LISTING, Sent("failed", None, None, "h-old"), OFFICE, "send"),
        (LISTING, Sent("failed", 4_000_000, LISTING.contract_date, "h-old"), OFFICE, "resend"),
        (LISTING, Sent("sending", None, None, HASH), OFFICE, "send"),
        (LISTING, Sent("sending", 4_000_000, LISTING.contract_date, HASH), OFFICE, "send"),
        (LISTING, Sent("retracted", None, None, "h-old"), OFFICE, "send"),
        (LISTING, Sent("skipped", None, None, None), OFFICE, "send"),
        (WITHDRAWN, SENT, OFFICE, "retract"),
        (LISTING, SENT, replace(OFFICE, final_price_enabled=False), "retract"),
        (WITHDRAWN, Sent("sending", None, None, "h-old"), OFFICE, "retract"),
        (WITHDRAWN, Sent("retracting", None, None, "h-old"), OFFICE, "retract"),
        (WITHDRAWN, Sent("retraction_failed", None, None, "h-old"), OFFICE, "retract"),
        (WITHDRAWN, Sent("retracted", None, None, "h-old"), OFFICE, "none"),
        (WITHDRAWN, Sent("failed", None, None, "h-old"), OFFICE, "none"),
        (WITHDRAWN, None, OFFICE, "none"),
        (replace(LISTING, state="for_sale"), SENT, OFFICE, "none"),
        (LISTING, SENT, replace(OFFICE, hemnet_final_price_agreement=False), "none"),
    ],
    ids=[
        "new",
        "unchanged",
        "price-changed",
        "contract-date-changed",
        "failed-never-accepted",
        "failed-resend",
        "in-flight-resumed",
        "in-flight-resend-resumed",
        "consent-given-again",
        "skipped-before",
        "consent-withdrawn",
        "office-setting-turned-off",
        "withdrawn-while-in-flight",
        "retraction-in-flight",
        "retraction-failed",
        "already-retracted",
        "withdrawn-never-accepted",
        "withdrawn-never-sent",
        "no-longer-sold-keeps-price",
        "agreement-ended-keeps-price",
    ],
)
def test_decide(listing: Listing, last: Sent | None, office: Office, action: str) -> None:
    assert _decide(listing, last, office).action == action


def test_a_skipped_decision_carries_every_reason() -> None:
    listing = replace(LISTING, category="tomt", contract_date=None)
    decision = _decide(listing, None)
    assert decision.reason == f"{r7.NO_CONTRACT_DATE}; {r7.category_reason('tomt')}"


def test_a_changed_price_is_named_in_the_reason() -> None:
    decision = _decide(replace(LISTING, final_price=4_300_000), SENT)
    assert "4250000" in decision.reason and "4300000" in decision.reason


# -- properties ---------------------------------------------------------------------

texts = st.text(max_size=12)
offices = st.builds(
    Office,
    id=texts,
    name=texts,
    company_id=st.none() | st.sampled_from(["C1", "C2", "C3"]),
    final_price_enabled=st.booleans(),
    hemnet_final_price_agreement=st.booleans(),
)
companies = st.lists(st.sampled_from(["C1", "C2", "C3"]), max_size=3).map(tuple)
brokers = st.none() | st.builds(
    User,
    id=texts,
    office_id=texts,
    name=texts,
    companies=companies,
    main_company=st.none() | st.sampled_from(["C1", "C2", "C3"]),
    statistics_all_companies=st.booleans(),
)
listings = st.builds(
    Listing,
    id=texts,
    office_id=texts,
    category=st.sampled_from(CATEGORIES) | texts,
    state=st.sampled_from(LISTING_STATES),
    company_id=st.none() | st.sampled_from(["C1", "C2", "C3"]),
    final_price=st.none() | st.integers(min_value=-10, max_value=10**9),
    contract_date=st.none() | st.dates(),
    send_final_price=st.booleans(),
)
lasts = st.none() | st.builds(
    Sent,
    state=st.sampled_from(r7.SYNC_STATES),
    sent_price=st.none() | st.integers(min_value=1, max_value=10**9),
    sent_contract_date=st.none() | st.dates(),
    document_hash=st.none() | st.sampled_from([HASH, "h-old"]),
)


@given(listings, offices, brokers, st.booleans())
def test_eligible_exactly_when_no_reason(
    listing: Listing, office: Office, broker: User | None, published: bool
) -> None:
    verdict = eligibility(listing, office, broker, published)
    assert verdict.eligible == (not verdict.reasons)
    assert len(set(verdict.reasons)) == len(verdict.reasons)
    if verdict.eligible:
        assert r7.consent_given(listing, office) and published
        assert listing.category in r7.FINAL_PRICE_CATEGORIES and listing.state == "sold"


@given(listings, offices, brokers, st.booleans(), lasts)
def test_decisions_respect_r7(
    listing: Listing, office: Office, broker: User | None, published: bool, last: Sent | None
) -> None:
    verdict = eligibility(listing, office, broker, published)
    decision = decide(verdict, listing, office, last, HASH)
    assert decision.reason
    if decision.action in ("send", "resend"):
        assert verdict.eligible
    if decision.action == "retract":
        assert not r7.consent_given(listing, office) and r7.hemnet_may_hold(last)
    if decision.action == "none" and verdict.eligible:
        assert last is not None and last.state == "sent"
