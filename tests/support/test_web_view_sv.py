"""The support view in Swedish and English, its home page and "Försök igen", over real HTTP."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import factories
import pytest
import requests
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from web_server import Served, csrf_of, give_password, login, serve, wait_settled

from syndication.scope import set_role
from syndication.status_view import STATE_NOTES
from syndication.store.models import TransferEventRow
from syndication.store.repository import record_status
from syndication.web import i18n
from syndication.web.pages import STATE_LABELS
from syndication.web.templates import TEMPLATES

WEB = Path(i18n.__file__).parent


def view_messages() -> set[str]:
    """Every message of the view: its templates, its Python pages, the state words."""
    found: set[str] = set()
    options = {"trimmed": "true", "extensions": "jinja2.ext.i18n"}
    for text in TEMPLATES.values():
        for _line, _func, message, _c in babel_extract(
                io.BytesIO(text.encode()), ("_", "gettext", "ngettext"), [], options):
            first = message if isinstance(message, str) else (message[0] if message else None)
            if first:
                found.add(first)
    for module in ("__init__.py", "acting.py"):
        with open(WEB / module, "rb") as source:
            found.update(m if isinstance(m, str) else m[0]
                         for _l, m, _c, _x in extract("python", source) if m)
    found.update(STATE_LABELS.values())
    found.update(note for note in STATE_NOTES.values() if note)
    return found


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_message_of_the_view_has_a_translation_in_both_catalogs(locale: str) -> None:
    catalog = read_po(io.BytesIO(i18n.catalog_text(locale)), locale=locale)
    translated = {message.id: message.string for message in catalog if message.id}
    missing = sorted(m for m in view_messages() if not translated.get(m))
    assert not missing, f"{locale}: no translation of {missing}"
    assert i18n.translations(locale).gettext("Failed") == {"sv": "Misslyckad",
                                                           "en": "Failed"}[locale]


@pytest.mark.parametrize(("param", "cookie", "header", "chosen"), [
    (None, None, None, "sv"),
    (None, None, "en-GB,en;q=0.9", "en"),
    (None, None, "de, en;q=0.5, sv;q=0.8", "sv"),
    (None, "en", "sv", "en"),
    ("sv", "en", "en", "sv"),
    ("fr", None, "fr", "sv"),
])
def test_the_language_is_the_switch_then_the_cookie_then_the_browser(
        param: str | None, cookie: str | None, header: str | None, chosen: str) -> None:
    assert i18n.choose_locale(param, cookie, header) == chosen


def test_times_are_stockholm_time_as_swedes_read_them() -> None:
    assert i18n.local_time("2026-12-01T07:49:00+00:00", "sv") == "1 dec 2026 08:49"
    assert i18n.local_time("2026-07-01T07:49:00+00:00", "sv") == "1 juli 2026 09:49", (
        "CLDR does not shorten juni and juli")
    assert i18n.local_time("2026-12-01T07:49:00+00:00", "en") == "1 Dec 2026 08:49"


@pytest.fixture
def served(seeded_any: Engine) -> Iterator[Served]:
    with serve(seeded_any) as running:
        with Session(seeded_any) as session:
            record_status(session, "NEW", "hemnet", "failed", action="create", attempt=True,
                          error="Hemnet: 500 " + "x" * 300, at=running.clock() - timedelta(hours=2))
            session.add_all(factories.rows(factories.listing_record(
                "WAIT", office_id="OFF1", broker_id=None, marketplaces=("hemnet",))))
            session.flush()
            record_status(session, "WAIT", "hemnet", "queued",
                          error="väntar på Hemnet: 503 (waiting for the marketplace)",
                          at=running.clock() - timedelta(minutes=5))
            session.commit()
        yield running


def test_the_pages_speak_swedish_and_english_on_request(served: Served) -> None:
    http, _ = login(served)
    page = http.get(served.url("/listings/FAIL"), timeout=10).text
    assert 'lang="sv"' in page and "Kontaktuppgifter vid fel" in page and "Misslyckad" in page
    retry_token = re.search(r'class="retry">\s*<input type="hidden" name="csrf_token" '
                            r'value="([^"]*)">', page)
    assert retry_token and retry_token.group(1) == csrf_of(page), "the button has the token"
    assert "Contacts on failure" not in page and "Försök igen" in page
    assert re.search(r'<time datetime="2026-11-20T09:30:00\+00:00" title="[^"]+ UTC">'
                     r"20 nov 2026 10:30</time>", page)
    english = http.get(served.url("/listings/FAIL"), headers={"Accept-Language": "en"},
                       timeout=10).text
    assert 'lang="en"' in english and "Contacts on failure" in english and "Failed" in english
    switched = http.get(served.url("/listings/FAIL?lang=en"), timeout=10)
    assert switched.cookies.get("lang") == "en"
    assert 'lang="en"' in http.get(served.url("/"), timeout=10).text
    assert 'lang="sv"' in http.get(served.url("/?lang=sv"), timeout=10).text


def test_the_home_page_says_what_is_wrong_now(served: Served) -> None:
    http, answer = login(served)
    assert answer.headers["Location"] == "/"
    page = http.get(served.url("/"), timeout=10).text
    assert "Vad är fel just nu" in page
    assert re.search(r'<tr class="count-row" data-marketplace="hemnet">.*?'
                     r'<td data-state="failed">2</td>', page, re.S)
    failures = re.findall(r'<tr class="failure" data-object="([^"]+)"', page)
    assert failures == ["NEW"], "FAIL failed three days ago, NEW two hours ago"
    assert "Hemnet mäklarsupport" in page and "x" * 300 in page
    assert re.findall(r'<tr class="waiting" data-object="([^"]+)"', page) == ["WAIT"]
    assert "väntar på Hemnet: 503" in page
    svg = re.search(r'<svg id="activity" role="img" aria-label="([^"]+)".*?</svg>', page, re.S)
    assert svg and svg.group(1).startswith("Överföringar och fel per timme")
    assert svg.group(0).count('fill="#c53030"><title>') >= 1
    searched = http.get(served.url("/sok?q=Lillgatan"), timeout=10).text
    assert 'data-object="FAIL"' in searched
    assert 'data-object="FAIL"' in http.get(served.url("/?q=Lillgatan"), timeout=10).text


def test_the_home_page_shows_only_the_users_offices(served: Served) -> None:
    with Session(_engine(served)) as session:
        record_status(session, "OTHER", "blocket", "failed", error="other tenant's failure",
                      at=served.clock())
        session.commit()
    http, _ = login(served)
    page = http.get(served.url("/"), timeout=10).text
    assert "other tenant's failure" not in page and 'data-object="OTHER"' not in page


def _engine(served: Served) -> Engine:
    assert served.engine is not None
    return served.engine


def press(served: Served, http: requests.Session, listing_id: str, marketplace: str,
          token: str | None = None) -> requests.Response:
    page = http.get(served.url(f"/listings/{listing_id}"), timeout=10)
    button = re.search(r'<form method="post" action="/listings/[^"]+/retry"\s+class="retry">\s*'
                       r'<input type="hidden" name="csrf_token" value="([^"]*)">', page.text)
    csrf = token if token is not None else (button.group(1) if button else csrf_of(page.text))
    return http.post(served.url(f"/listings/{listing_id}/retry"),
                     data={"csrf_token": csrf, "marketplace": marketplace},
                     allow_redirects=False, timeout=10)


def test_try_again_queues_once_and_records_who(served: Served) -> None:
    http, _ = login(served)
    first = press(served, http, "FAIL", "hemnet")
    assert first.status_code == 302 and first.headers["Location"] == "/listings/FAIL?done=queued"
    with Session(_engine(served)) as session:
        pressed = list(session.exec(select(TransferEventRow).where(
            col(TransferEventRow.action) == "retry")))
    assert [(e.listing_id, e.marketplace, e.actor) for e in pressed] == [("FAIL", "hemnet",
                                                                          "anna")]
    assert pressed[0].request_id
    page = http.get(served.url("/listings/FAIL?done=queued"), timeout=10).text
    assert 'src="/static/poll.js"' in page and '<td class="actor">anna</td>' in page
    status = http.get(served.url("/listings/FAIL/status.json"), timeout=10).json()
    assert {p["marketplace"] for p in status["marketplaces"]} >= {"hemnet"}
    settled = wait_settled(served, http, "FAIL", ("hemnet",))
    assert settled["hemnet"] != "queued", "the in-process worker ran the queued transfer"
    with Session(_engine(served)) as session:
        record_status(session, "FAIL", "hittahem", "queued", at=served.clock())
        session.commit()
    again = press(served, http, "FAIL", "hemnet")
    assert again.headers["Location"] == "/listings/FAIL?done=busy"
    with Session(_engine(served)) as session:
        assert len(list(session.exec(select(TransferEventRow).where(
            col(TransferEventRow.action) == "retry")))) == 1, "a busy press queues nothing"
    published = press(served, http, "PUB", "hemnet")
    assert published.headers["Location"] == "/listings/PUB?done=not_retryable"


def test_try_again_needs_the_forms_token(served: Served) -> None:
    http, _ = login(served)
    refused = press(served, http, "FAIL", "hemnet", token="forged")
    assert refused.status_code == 400
    anonymous = requests.post(served.url("/listings/FAIL/retry"),
                              data={"marketplace": "hemnet"}, allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    with Session(_engine(served)) as session:
        assert not list(session.exec(select(TransferEventRow).where(
            col(TransferEventRow.action) == "retry")))


def test_another_tenants_retry_is_answered_as_an_unknown_listing(served: Served) -> None:
    http, _ = login(served)
    token = csrf_of(http.get(served.url("/"), timeout=10).text)
    answers = [http.post(served.url(f"/listings/{listing_id}/retry"),
                         data={"csrf_token": token, "marketplace": "blocket"},
                         allow_redirects=False, timeout=10) for listing_id in ("OTHER", "NOPE0")]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].content == answers[1].content.replace(b"NOPE0", b"OTHER")
    assert http.get(served.url("/listings/OTHER/status.json"), timeout=10).status_code == 404


def test_the_office_page_offers_to_transfer_all_failed(served: Served) -> None:
    http, _ = login(served)
    page = http.get(served.url("/offices/OFF1"), timeout=10).text
    assert "Överför alla misslyckade" in page
    answer = http.post(served.url("/offices/OFF1/retry-failed"),
                       data={"csrf_token": csrf_of(page)}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == "/offices/OFF1?queued=2"
    with Session(_engine(served)) as session:
        pressed = {(e.listing_id, e.actor) for e in session.exec(select(TransferEventRow).where(
            col(TransferEventRow.action) == "retry"))}
    assert pressed == {("FAIL", "anna"), ("NEW", "anna")}


@pytest.mark.parametrize(("role", "status"), [("support", 403), ("admin", 302)])
def test_support_reads_and_may_not_try_again_admin_may(served: Served, role: str,
                                                       status: int) -> None:
    engine = _engine(served)
    with Session(engine) as session:
        session.add_all(factories.rows(factories.user_record(
            "sara", office_id="OFF2", name="Sara", companies=())))
        session.flush()
        set_role(session, "sara", role)
        session.commit()
    give_password(engine, "sara", served.clock)
    http, _ = login(served, "sara")
    assert "Lillgatan" in http.get(served.url("/listings/FAIL"), timeout=10).text
    answer = press(served, http, "FAIL", "hemnet")
    assert answer.status_code == status
    with Session(engine) as session:
        pressed = [e.actor for e in session.exec(select(TransferEventRow).where(
            col(TransferEventRow.action) == "retry"))]
    assert pressed == ([] if role == "support" else ["sara"])
