"""Every page of the view in Swedish shows no English word of the view's catalog, and in
English no Swedish one — over real HTTP, on SQLite and PostgreSQL.

The store holds what support meets: a pair in every state, failures with the
licence refusal and the "not known" note, a pair waiting behind an open circuit,
a history with every action and a "Försök igen", photo problems, a final-price
report with each skip reason. Every page, the notices after a press and the
error pages (400, 403, 404, 405, 429, 500) are fetched as a Swedish and as an
English user. The English words are those of the English catalog's messages
that Swedish does not share; a page's words are its text and the text of its
``title``, ``aria-label`` and ``placeholder`` attributes.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import factories
import pytest
import requests
from babel.messages.pofile import read_po
from fastapi import HTTPException
from sqlalchemy import Engine, update
from sqlmodel import Session, col
from web_server import Served, csrf_of, give_password, login, serve

from syndication import registry
from syndication.api.queue import UNAVAILABLE_MESSAGE
from syndication.auth import FAILED_MESSAGE
from syndication.circuit import CircuitOpen, CircuitState
from syndication.errors import InputError
from syndication.records import Office
from syndication.rules import final_price as r7
from syndication.rules.licence import not_licensed_message
from syndication.scope import set_role
from syndication.status_view import unknown_listing
from syndication.store.models import FinalPriceRow, OfficeRow, PhotoProblemRow, TransferEventRow
from syndication.store.repository import record_status
from syndication.support import UNMATCHED_ADVICE, unknown_office
from syndication.throttle import THROTTLED_MESSAGE
from syndication.transfer.job import NOT_KNOWN_NOTE
from syndication.web import i18n
from syndication.web.words import domain_text

WORD = re.compile(r"\b[^\W\d_]{2,}\b")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _catalog(locale: str) -> dict[str, str]:
    catalog = read_po(io.BytesIO(i18n.catalog_text(locale)), locale=locale)
    return {m.id: m.string for m in catalog if isinstance(m.id, str) and m.id}


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(PLACEHOLDER.sub(" ", text))}


SV = _catalog("sv")
SWEDISH_WORDS = set().union(*(_words(s) for s in SV.values()))
ENGLISH_WORDS = set().union(*(_words(m) for m in SV))
NAMES = set().union(*(_words(registry.title(name)) for name in registry.names()))
"""The marketplaces' own names ("Blocket Bostad") are names in either language."""
ENGLISH_ONLY = ENGLISH_WORDS - SWEDISH_WORDS - NAMES
SWEDISH_ONLY = SWEDISH_WORDS - ENGLISH_WORDS - NAMES


def shown_words(page: str) -> set[str]:
    """The words a reader sees (or hears) on ``page``: its text without scripts and
    styles, and its ``title``, ``aria-label`` and ``placeholder`` attributes."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    attributes = re.findall(r'(?:title|aria-label|placeholder)="([^"]*)"', page)
    text = re.sub(r"<[^>]+>", " ", page)
    return _words(html.unescape(" ".join([text, *attributes])))


ADDRESS = "Lillgatan 2"
CIRCUIT = CircuitOpen("hemnet", CircuitState(failures=4, opened_at=1.0, reason="E503"), 30.0)


@pytest.fixture
def served(seeded_any: Engine) -> Iterator[Served]:
    """The seeded store with every state, note, action and final-price reason in it; its
    data (errors of marketplaces, photo problems, ids) is codes, words of neither language."""
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    sold = {"office_id": "OFF1", "broker_id": None, "state": "sold", "final_price": 3_100_000,
            "contract_date": date(2026, 10, 3), "send_final_price": True}
    with Session(seeded_any) as session:
        office = session.get(OfficeRow, "OFF1")
        assert office is not None
        office.final_price_enabled = office.hemnet_final_price_agreement = True
        session.add_all(factories.rows(
            factories.user_record("multi", office_id="OFF1", name="Mats", companies=("C1", "C2"),
                                  main_company="C1"),
            factories.user_record("sara", office_id="OFF2", name="Sara", companies=()),
            factories.listing_record("S1", **sold),
            factories.listing_record("S2", **{**sold, "send_final_price": False}),
            factories.listing_record("S3", **sold),
            factories.listing_record("S4", **{**sold, "category": "lantbruk"}),
            factories.listing_record("S5", **{**sold, "final_price": None,
                                                     "contract_date": None}),
            factories.listing_record("S6", **{**sold, "broker_id": "multi",
                                                     "company_id": "C2"}),
            factories.listing_record("S7", **sold),
            factories.listing_record("S8", **sold),
            factories.listing_record("KO1", office_id="OFF1", broker_id=None,
                                     marketplaces=("hemnet",)),
        ))
        session.flush()
        set_role(session, "sara", "support")
        published = datetime(2026, 9, 1, tzinfo=UTC)
        for listing_id in ("S1", "S2", "S4", "S5", "S6", "S7",
                           "S8"):
            record_status(session, listing_id, "hemnet", "published", action="create",
                          marketplace_id=f"H-{listing_id}", at=published)
        session.add(FinalPriceRow(listing_id="S7", state="sent", sent_price=3_100_000,
                                  sent_contract_date=date(2026, 10, 3)))
        session.add(FinalPriceRow(listing_id="S8", state="sent", sent_price=2_900_000,
                                  sent_contract_date=date(2026, 10, 3)))
        record_status(session, "FAIL", "hemnet", "failed", action="update", attempt=True,
                      error="Hemnet: 422 E-7731", at=now - timedelta(hours=1))
        record_status(session, "NEW", "blocket", "not_licensed", at=now - timedelta(hours=2),
                      error=not_licensed_message(Office(id="OFF1", name="Mäklarhuset City"),
                                                 "blocket"))
        record_status(session, "GONE", "hittahem", "deleted", action="delete",
                      error=NOT_KNOWN_NOTE, at=now - timedelta(hours=3))
        record_status(session, "KO1", "hemnet", "queued", error=CIRCUIT.waiting_note,
                      at=now - timedelta(minutes=5))
        session.add(TransferEventRow(listing_id="FAIL", marketplace="hemnet", state="queued",
                                     action="retry", actor="anna", at=now - timedelta(minutes=30)))
        session.add(PhotoProblemRow(assignment_id="A-7", system_id="SYS-X9",
                                    message="E-JPEG-3", at=now))
        session.execute(update(PhotoProblemRow).values(message="E-JPEG-9"))
        session.execute(update(TransferEventRow).where(
            col(TransferEventRow.error) == "Hemnet: 422 missing price").values(
            error="Hemnet: 422 E-7731"))
        session.commit()
    with serve(seeded_any) as running:
        give_password(seeded_any, "sara", running.clock)

        def broken() -> None:
            raise HTTPException(500, "Internal Server Error")

        running.app.add_api_route("/broken-page", broken)
        yield running


def pages(served: Served, language: str) -> dict[str, requests.Response]:
    """Every page of the view (and its error pages) fetched in ``language``."""
    header = {"Accept-Language": language}
    anonymous = requests.Session()
    anonymous.headers.update(header)
    got: dict[str, requests.Response] = {"login": anonymous.get(served.url("/login"))}
    token = csrf_of(got["login"].text)
    for _ in range(8):
        answer = anonymous.post(served.url("/login"), data={
            "csrf_token": token, "username": "nobody", "password": "wrong"},
            allow_redirects=False)
        got["login 401" if answer.status_code == 401 else "login 429"] = answer
    assert got["login 429"].status_code == 429

    http = requests.Session()
    http.headers.update(header)
    login(served, http=http)
    for path in ["/", "/sok", "/sok?q=gatan", "/sok?q=qqq", "/listings/FAIL", "/listings/PUB",
                 "/listings/GONE", "/listings/NEW", "/listings/KO1",
                 "/listings/FAIL?done=queued", "/listings/FAIL?done=busy",
                 "/listings/FAIL?done=not_retryable", "/offices/OFF1?queued=2",
                 "/offices/OFF1/slutpriser", "/listings/NOPE", "/offices/NOPE",
                 "/offices/NOPE/slutpriser", "/no/such/page", "/offices/OFF1?state=zzz",
                 "/broken-page"]:
        got[path] = http.get(served.url(path))
    for state in ("failed", "queued", "sent", "published", "deleted", ""):
        got[f"office {state}"] = http.get(served.url(f"/offices/OFF1?state={state}"))
    got["405"] = http.put(served.url("/listings/FAIL"))
    got["retry 400"] = http.post(served.url("/listings/FAIL/retry"),
                                 data={"csrf_token": "forged", "marketplace": "hemnet"})
    status = http.get(served.url("/listings/KO1/status.json")).json()
    got["status.json"] = requests.Response()
    got["status.json"].status_code, got["status.json"].encoding = 200, "utf-8"
    got["status.json"]._content = " ".join(
        f"{p['label']} {p['error'] or ''} {p['note']}" for p in status["marketplaces"]).encode()

    support = requests.Session()
    support.headers.update(header)
    login(served, "sara", http=support)
    page = support.get(served.url("/listings/FAIL")).text
    got["retry 403"] = support.post(served.url("/listings/FAIL/retry"), data={
        "csrf_token": csrf_of(page), "marketplace": "hemnet"})
    office = support.get(served.url("/offices/OFF1")).text
    got["office retry 403"] = support.post(served.url("/offices/OFF1/retry-failed"),
                                           data={"csrf_token": csrf_of(office)})
    return got


EXPECTED_STATUS = {"login 401": 401, "login 429": 429, "/listings/NOPE": 404,
                   "/offices/NOPE": 404, "/offices/NOPE/slutpriser": 404, "/no/such/page": 404,
                   "/offices/OFF1?state=zzz": 400, "/broken-page": 500, "405": 405,
                   "retry 400": 400, "retry 403": 403, "office retry 403": 403}


def test_a_swedish_user_reads_no_english_word_on_any_page(served: Served) -> None:
    got = pages(served, "sv")
    assert {name: a.status_code for name, a in got.items() if a.status_code != 200} == {
        name: status for name, status in EXPECTED_STATUS.items()}
    leftovers = {name: sorted(shown_words(a.text) & ENGLISH_ONLY) for name, a in got.items()}
    assert {name: words for name, words in leftovers.items() if words} == {}
    final = html.unescape(got["/offices/OFF1/slutpriser"].text)
    for reason in (r7.FLAG_NOT_SET, r7.NOT_PUBLISHED_BEFORE_SALE, r7.NO_FINAL_PRICE,
                   r7.NO_CONTRACT_DATE, r7.ALREADY_SENT):
        assert domain_text(reason, i18n.translations("sv").gettext) in final
    assert "kategorin 'lantbruk' har ingen slutprisstatistik" in final
    assert "objektet tillhör bolaget 'C2', inte mäklarens huvudbolag 'C1'" in final
    assert "slutpriset ändrat från 2900000 (2026-10-03) till 3100000" in final
    assert "Skickas i natt" in final and "Skickas inte" in final
    listing = got["/listings/FAIL"].text
    assert "Uppdatera" in listing and "Försök igen" in listing and "Till salu" in listing
    assert "Försök med överföringen igen först." in listing
    assert "Ta bort" in got["/listings/GONE"].text
    assert "marknadsplatsen kände inte till objektet" in got["/listings/GONE"].text
    assert "saknar licens för Blocket Bostad" in got["/listings/NEW"].text
    assert "väntar på Hemnet: E503 (4 fel i rad" in got["/"].text
    assert "fel användarnamn eller lösenord" in got["login 401"].text
    assert "för många misslyckade inloggningar" in got["login 429"].text
    assert "inget objekt med id 'NOPE'" in html.unescape(got["/listings/NOPE"].text)
    assert "Internt fel" in got["/broken-page"].text
    assert "I kö" in got["status.json"].text


def test_an_english_user_reads_no_swedish_word_on_any_page(served: Served) -> None:
    got = pages(served, "en")
    leftovers = {name: sorted(shown_words(a.text) & SWEDISH_ONLY) for name, a in got.items()}
    assert {name: words for name, words in leftovers.items() if words} == {}
    assert "Please try the transfer again first." in got["/listings/FAIL"].text
    assert "has no licence for Blocket Bostad" in got["/listings/NEW"].text
    assert "(licensen saknar" not in got["/listings/NEW"].text


def test_the_lists_catch_a_leftover() -> None:
    """The check itself: an English page read as Swedish is caught, and the reverse."""
    english = '<p>Failed · Published</p><button title="Try again">x</button>'
    assert {"failed", "published", "try", "again"} <= shown_words(english) & ENGLISH_ONLY
    assert {"misslyckad", "publicerad"} <= shown_words("<td>Misslyckad Publicerad</td>") & (
        SWEDISH_ONLY)


@pytest.mark.parametrize("text", [
    FAILED_MESSAGE, THROTTLED_MESSAGE.format(seconds=7), str(unknown_listing("O:1")),
    str(unknown_office("K-1")), not_licensed_message(Office(id="K1", name="Byrån"), "hittahem"),
    CIRCUIT.waiting_note, NOT_KNOWN_NOTE, UNMATCHED_ADVICE, registry.ADVICE,
    UNAVAILABLE_MESSAGE, str(InputError("no such listing in the store", record="listing 'O1'")),
    r7.category_reason("tomt"), r7.company_reason("C2", "C1"), r7.company_reason("C2", None),
    *(r7.decide(r7.eligibility(listing, office, None, True), listing, office, last, "h").reason
      for listing, office in [(
          factories.listing_record("L1", state="sold", final_price=2_000_000,
                                   contract_date=date(2026, 10, 1), send_final_price=True),
          factories.office_record("K1", final_price_enabled=True,
                                  hemnet_final_price_agreement=True))]
      for last in (None, r7.Sent("failed"), r7.Sent("sent", 2_000_000, date(2026, 10, 1)),
                   r7.Sent("sent", 1_900_000, date(2026, 9, 1)),
                   r7.Sent("sending", None, None, "h"), r7.Sent("sending", 1, None, "x"),
                   r7.Sent("skipped", 2_000_000))),
])
def test_every_domain_text_the_view_shows_has_its_swedish_words(text: str) -> None:
    """Each domain function's text is matched by the view (a changed text fails here)."""
    swedish = domain_text(text, i18n.translations("sv").gettext)
    english = domain_text(text, i18n.translations("en").gettext)
    assert swedish != text or not (_words(text) & ENGLISH_ONLY), "not matched"
    assert not _words(swedish) & ENGLISH_ONLY, swedish
    assert not _words(english) & SWEDISH_ONLY, english


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_message_of_the_words_labels_and_final_prices_is_in_the_catalog(
        locale: str) -> None:
    """The messages :mod:`syndication.web.words`, the labels of
    :mod:`syndication.web.pages` and the final-price page mark (``N_``, ``_``, the
    page's template) each have a translation."""
    from pathlib import Path

    from babel.messages.extract import extract
    from jinja2.ext import babel_extract

    from syndication.web import final_prices

    found: set[str] = set()
    for module in ("words.py", "pages.py", "final_prices.py", "__init__.py"):
        with open(Path(i18n.__file__).parent / module, "rb") as source:
            found.update(m if isinstance(m, str) else m[0] for _l, m, _c, _x in extract(
                "python", source, keywords={"_": None, "N_": None}) if m)
    options = {"trimmed": "true", "extensions": "jinja2.ext.i18n"}
    found.update(m if isinstance(m, str) else m[0] for _l, _f, m, _c in babel_extract(
        io.BytesIO(final_prices.TEMPLATE.encode()), ("_",), [], options) if m)
    assert len(found) > 60
    translated = _catalog(locale)
    assert sorted(m for m in found if not translated.get(m)) == []
