"""The support web view over real HTTP: login, expiry, authorisation, no hash, escaping."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import factories
import pytest
import requests
from sqlalchemy import Engine
from sqlmodel import Session
from web_server import PASSWORD, SECRET, Served, csrf_of, english, login, serve, who

from syndication.service import ServiceContext
from syndication.settings import Settings
from syndication.web import WebView

PROTECTED = [
    "/", "/?q=PUB", "/sok?q=PUB", "/listings/PUB", "/listings/NOPE", "/offices/OFF1",
    "/offices/OFF1?state=", "/offices/OFF1/slutpriser", "/no/such/page",
]


def states_in(html: str, kind: str) -> list[str]:
    """The ``data-state`` of each row of class ``kind`` (``status-row``, ``event``), in order."""
    return re.findall(rf'<tr class="{kind}"[^>]*data-state="([^"]*)"', html)


def attribute_in(html: str, kind: str, attribute: str) -> list[str]:
    """The ``attribute`` of each row of class ``kind``, in order."""
    return re.findall(rf'<tr class="{kind}"[^>]*?{attribute}="([^"]*)"', html)


@pytest.fixture
def served(seeded: Engine) -> Iterator[Served]:
    with Session(seeded) as session:
        session.add_all(factories.rows(factories.listing_record(
            "XSS", office_id="OFF1", broker_id=None, marketplaces=("hemnet",),
            street="<script>alert(1)</script>")))
        session.commit()
    with serve(seeded) as running:
        yield running


def test_every_route_but_login_needs_a_login(served: Served) -> None:
    context = ServiceContext(settings=Settings(), engine=None, contacts={},  # type: ignore[arg-type]
                             secret_key=SECRET)
    rule_paths = {route.path for route in WebView(context).router.routes}  # type: ignore[attr-defined]
    assert rule_paths == {"/login", "/logout", "/", "/sok", "/static/poll.js",
                          "/listings/{listing_id}", "/listings/{listing_id}/status.json",
                          "/listings/{listing_id}/retry", "/offices/{office_id}",
                          "/offices/{office_id}/retry-failed", "/offices/{office_id}/slutpriser",
                          "/offices/{office_id}/holds/{hold_id}"}
    for path in PROTECTED:
        answer = requests.get(served.url(path), allow_redirects=False, timeout=10)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login?next=")
    answer = requests.post(served.url("/logout"), allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    answer = requests.post(served.url("/offices/OFF1/holds/h1"), data={"decision": "cancel"},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login?next=")


def test_login_sets_a_hardened_cookie_and_reaches_the_listing(served: Served) -> None:
    http, answer = login(served, http=english())
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = http.get(served.url("/listings/FAIL"), timeout=10)
    assert page.status_code == 200
    assert "Hemnet: 422 missing price" in page.text
    assert "Hemnet mäklarsupport" in page.text and "try the transfer again first" in page.text
    assert "image 3 is not a JPEG" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    history = http.get(served.url("/listings/PUB"), timeout=10).text
    assert "HN-1001" in history and 'id="history"' in history


def test_login_redirects_to_the_page_asked_for_but_never_off_site(served: Served) -> None:
    http = requests.Session()
    first = http.get(served.url("/listings/PUB"), timeout=10)
    assert first.url.endswith("/login?next=/listings/PUB")
    answer = http.post(first.url, data={"csrf_token": csrf_of(first.text), "username": "anna",
                                        "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert answer.headers["Location"] == "/listings/PUB"
    form = requests.Session()
    page = form.get(served.url("/login?next=//evil.example/x"), timeout=10)
    answer = form.post(served.url("/login?next=//evil.example/x"),
                       data={"csrf_token": csrf_of(page.text), "username": "anna",
                             "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert answer.headers["Location"] == "/"


@pytest.mark.parametrize(("username", "password"), [("anna", "vinter-2026"), ("nobody", PASSWORD)])
def test_wrong_password_and_unknown_user_get_the_same_page(
    served: Served, username: str, password: str
) -> None:
    http, answer = login(served, username, password, http=english())
    assert answer.status_code == 401
    assert "wrong user name or password" in answer.text
    assert username not in answer.text.replace('name="username"', "")
    assert who(served, http) is None


def test_login_without_the_csrf_token_is_refused(served: Served) -> None:
    http = requests.Session()
    http.get(served.url("/login"), timeout=10)
    for token in ("", "forged"):
        answer = http.post(served.url("/login"), data={"csrf_token": token, "username": "anna",
                                                       "password": PASSWORD},
                           allow_redirects=False, timeout=10)
        assert answer.status_code == 400
    assert who(served, http) is None


def test_session_expires_after_30_idle_minutes(served: Served) -> None:
    http, _ = login(served)
    served.clock.advance(minutes=29)
    assert who(served, http) == "anna"
    served.clock.advance(minutes=29)
    assert who(served, http) == "anna"
    served.clock.advance(minutes=31)
    assert who(served, http) is None
    page = http.get(served.url("/listings/PUB"), allow_redirects=False, timeout=10)
    assert page.status_code == 302


def test_session_ends_after_eight_hours_however_active(served: Served) -> None:
    http, _ = login(served)
    for _ in range(16):
        served.clock.advance(minutes=29)
        assert who(served, http) == "anna"
    served.clock.advance(minutes=20)
    assert who(served, http) is None


def test_a_tampered_cookie_is_no_login(served: Served) -> None:
    http, _ = login(served)
    value = http.cookies["syndication_session"]
    forged = requests.Session()
    forged.cookies.set("syndication_session", value[:-3] + "abc")
    assert who(served, forged) is None


def test_logout_needs_its_token_and_ends_the_session(served: Served) -> None:
    http, _ = login(served)
    page = http.get(served.url("/"), timeout=10)
    refused = http.post(served.url("/logout"), data={"csrf_token": "x"}, timeout=10)
    assert refused.status_code == 400
    http.post(served.url("/logout"), data={"csrf_token": csrf_of(page.text)}, timeout=10)
    assert who(served, http) is None


def test_find_by_id_system_id_and_address(served: Served) -> None:
    http, _ = login(served)
    for query, expected in (("PUB", "PUB"), ("SYS-FAIL", "FAIL"), ("lillgatan", "FAIL"),
                            ("storgatan 1 uppsala", "PUB")):
        page = http.get(served.url("/"), params={"q": query}, timeout=10).text
        assert f'href="/listings/{expected}"' in page, query
    assert 'id="no-results"' in http.get(served.url("/?q=100%25"), timeout=10).text


def test_office_failures_and_filters(served: Served) -> None:
    http, _ = login(served)
    page = http.get(served.url("/offices/OFF1"), timeout=10).text
    assert 'data-state="failed"' in page and "422 missing price" in page
    assert 'data-state="published"' not in page
    everything = http.get(served.url("/offices/OFF1?state="), timeout=10).text
    assert 'data-state="published"' in everything
    assert http.get(served.url("/offices/NOPE"), timeout=10).status_code == 404
    assert http.get(served.url("/offices/OFF1?state=bogus"), timeout=10).status_code == 400
    failed = http.get(served.url("/offices/OFF1?state=failed"), timeout=10).text
    assert sorted(set(attribute_in(failed, "status-row", "data-object"))) == ["FAIL"]


def test_public_address_is_a_link_only_when_http(served: Served, seeded: Engine) -> None:
    from support_data import PUBLIC_URL

    from syndication.store.repository import record_status

    http, _ = login(served)
    page = http.get(served.url("/listings/PUB"), timeout=10).text
    assert f'<a href="{PUBLIC_URL}"' in page and '<td class="attempts">1</td>' in page
    office = http.get(served.url("/offices/OFF1?state=published"), timeout=10).text
    assert f'<a href="{PUBLIC_URL}"' in office
    hostile = 'javascript:alert("x")//"><b>'
    with Session(seeded) as session:
        record_status(session, "PUB", "hittahem", "published", public_url=hostile)
        session.commit()
    page = http.get(served.url("/listings/PUB"), timeout=10).text
    assert 'href="javascript:' not in page and "<b>" not in page
    assert "javascript:alert(&#34;x&#34;)//&#34;&gt;&lt;b&gt;" in page


@pytest.mark.parametrize(
    ("address", "link"),
    [("https://hemnet.example/b/1", True), ("HTTP://x.example/", True),
     ("javascript:alert(1)", False), ("/bostad/1", False), ("https:///nohost", False),
     (" https://x.example/", False), ("https://x.example/\n", False),
     ("https://x.example/\x00", False), ("http://[::1", False), (None, False)],
)
def test_web_link_only_for_http_addresses(address: str | None, link: bool) -> None:
    from syndication.web import web_link

    assert web_link(address) == (address if link else None)


def test_values_are_escaped(served: Served) -> None:
    http, _ = login(served)
    page = http.get(served.url("/listings/XSS"), timeout=10).text
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    page = http.get(served.url("/"), params={"q": "<b>x</b>"}, timeout=10).text
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_no_response_ever_carries_a_password_or_hash(
    served: Served, captured_logs: io.StringIO
) -> None:
    bodies = []
    http, answer = login(served)
    bodies.append(answer.text + str(answer.headers))
    for path in PROTECTED + ["/?q=anna", "/?q=OFF1"]:
        answer = http.get(served.url(path), timeout=10)
        bodies.append(answer.text + str(answer.headers))
    _, failed = login(served, "anna", "Fel-Losen-1")
    bodies.append(failed.text)
    everything = "\n".join(bodies)
    for secret in (served.password_hash, "$argon2", PASSWORD, "Fel-Losen-1"):
        assert secret not in everything
    logged = captured_logs.getvalue()
    assert "login_succeeded" in logged and "login_failed" in logged
    for secret in (served.password_hash, "$argon2", PASSWORD, "Fel-Losen-1",
                   http.cookies["syndication_session"], "test-secret-key"):
        assert secret not in logged


def test_a_listing_page_has_the_design_shape_and_history(served: Served) -> None:
    http, _ = login(served)
    page = http.get(served.url("/listings/PUB"), timeout=10).text
    assert '<span id="object-id">PUB</span>' in page
    assert set(attribute_in(page, "status-row", "data-marketplace")) == {"hemnet", "hittahem"}
    assert states_in(page, "event") == ["queued", "published", "sent"]
    assert http.get(served.url("/listings/NOPE"), timeout=10).status_code == 404


def test_a_password_change_ends_the_other_sessions(served: Served, seeded: Engine) -> None:
    from web_server import FAST

    from syndication.passwords import set_password

    http, _ = login(served)
    assert who(served, http) == "anna"
    served.clock.advance(minutes=1)
    with Session(seeded) as session:
        set_password(session, "anna", "Sommar-2027", old_password=PASSWORD, hasher=FAST,
                     now=served.clock())
        session.commit()
    assert who(served, http) is None
    again, answer = login(served, password="Sommar-2027")
    assert who(served, again) == "anna"


def test_a_cookie_copied_before_logout_is_refused_after_it(served: Served, seeded: Engine) -> None:
    """Logout revokes the session's token in the store: a copy of the cookie, signed and
    fresh as it is, answers as logged-out afterwards."""
    from syndication.store.models import SessionTokenRow

    http, _ = login(served)
    copied = http.cookies["syndication_session"]
    thief = requests.Session()
    thief.cookies.set("syndication_session", copied)
    assert who(served, thief) == "anna"
    page = http.get(served.url("/"), timeout=10)
    out = http.post(served.url("/logout"), data={"csrf_token": csrf_of(page.text)},
                    allow_redirects=False, timeout=10)
    assert out.status_code == 302
    assert who(served, thief) is None
    assert thief.get(served.url("/listings/PUB"), allow_redirects=False,
                     timeout=10).status_code == 302
    from sqlmodel import select

    with Session(seeded) as session:
        tokens = session.exec(
            select(SessionTokenRow).where(SessionTokenRow.user_id == "anna")).all()
    assert len(tokens) == 1 and tokens[0].revoked_at is not None
