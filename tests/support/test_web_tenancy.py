"""Tenancy in the web view (R14), over real HTTP: every route × every kind of visitor.

The seeded agency gets companies: OFF1 is company C1's, OFF2 company C2's.
The visitors are an anonymous browser, an agent of C1 (OFF1's own), an agent
of C2 (another company), a support user and an admin. For each route the
matrix says the status each gets; a listing or office of another tenant must
answer exactly as an unknown one of the same length does (status, headers
that describe the body, and the body byte for byte once the id asked for is
swapped), and nothing of OFF1 may reach the other company's agent.
"""

from __future__ import annotations

from collections.abc import Iterator

import factories
import pytest
import requests
from sqlalchemy import Engine
from sqlmodel import Session
from web_server import PASSWORD, Served, csrf_of, give_password, login, serve

from syndication.scope import set_role
from syndication.store.models import OfficeRow

VISITORS = ("anonymous", "own", "other", "support", "admin")
USERS = {
    "own": ("olle", "OFF1", ("C1",), "agent"),
    "other": ("otto", "OFF2", ("C2",), "agent"),
    "support": ("sara", "OFF2", (), "support"),
    "admin": ("adam", "OFF2", (), "admin"),
}

ROUTES: dict[str, dict[str, int]] = {
    # path: status for anonymous, own, other, support, admin (in VISITORS' order)
    "/": dict(zip(VISITORS, (302, 200, 200, 200, 200), strict=True)),
    "/?q=gatan": dict(zip(VISITORS, (302, 200, 200, 200, 200), strict=True)),
    "/listings/PUB": dict(zip(VISITORS, (302, 200, 404, 200, 200), strict=True)),
    "/listings/FAIL": dict(zip(VISITORS, (302, 200, 404, 200, 200), strict=True)),
    "/listings/OTHER": dict(zip(VISITORS, (302, 404, 200, 200, 200), strict=True)),
    "/listings/NOPE": dict(zip(VISITORS, (302, 404, 404, 404, 404), strict=True)),
    "/offices/OFF1": dict(zip(VISITORS, (302, 200, 404, 200, 200), strict=True)),
    "/offices/OFF1?state=": dict(zip(VISITORS, (302, 200, 404, 200, 200), strict=True)),
    "/offices/OFF2": dict(zip(VISITORS, (302, 404, 200, 200, 200), strict=True)),
    "/offices/NOPE": dict(zip(VISITORS, (302, 404, 404, 404, 404), strict=True)),
    "/offices/OFF1/slutpriser": dict(zip(VISITORS, (302, 200, 404, 200, 200), strict=True)),
    "/offices/OFF2/slutpriser": dict(zip(VISITORS, (302, 404, 200, 200, 200), strict=True)),
    "/offices/NOPE/slutpriser": dict(zip(VISITORS, (302, 404, 404, 404, 404), strict=True)),
    "/no/such/page": dict(zip(VISITORS, (302, 404, 404, 404, 404), strict=True)),
    "/login": dict(zip(VISITORS, (200, 200, 200, 200, 200), strict=True)),
}
"""Every GET route of the view (and an address that has none) and what each visitor gets."""

FOUND_BY_SEARCH = {
    "own": {"PUB", "FAIL", "NEW", "GONE"},
    "other": {"OTHER"},
    "support": {"PUB", "FAIL", "NEW", "GONE", "OTHER"},
    "admin": {"PUB", "FAIL", "NEW", "GONE", "OTHER"},
}

UNKNOWN_TWIN = {"/listings/PUB": "/listings/ZZZ", "/listings/FAIL": "/listings/ZZZZ",
                "/listings/OTHER": "/listings/ZZZZZ", "/offices/OFF1": "/offices/ZZZ9",
                "/offices/OFF1?state=": "/offices/ZZZ9?state=", "/offices/OFF2": "/offices/ZZZ9",
                "/offices/OFF1/slutpriser": "/offices/ZZZ9/slutpriser",
                "/offices/OFF2/slutpriser": "/offices/ZZZ9/slutpriser"}
"""An unknown id of the same length for each route naming a tenant's listing or office."""

OFF1_SECRETS = ("Storgatan", "Lillgatan", "HN-1001", "422 missing price", "image 3 is not a JPEG",
                "SYS-FAIL", "SYS-PUB", "Mäklarhuset City")
"""What only OFF1's readers may see."""


@pytest.fixture
def served(seeded_any: Engine) -> Iterator[Served]:
    with Session(seeded_any) as session:
        for office_id, company in (("OFF1", "C1"), ("OFF2", "C2")):
            office = session.get(OfficeRow, office_id)
            assert office is not None
            office.company_id = company
            session.add(office)
        for user_id, office_id, companies, _ in USERS.values():
            session.add_all(factories.rows(factories.user_record(
                user_id, office_id=office_id, name=user_id.title(), companies=companies)))
        session.flush()
        for user_id, _, _, role in USERS.values():
            set_role(session, user_id, role)
        session.commit()
    with serve(seeded_any) as running:
        for user_id, *_ in USERS.values():
            give_password(seeded_any, user_id, running.clock)
        yield running


def visitor(served: Served, kind: str) -> requests.Session:
    if kind == "anonymous":
        return requests.Session()
    http, answer = login(served, USERS[kind][0])
    assert answer.status_code == 302, (kind, answer.text)
    return http


def same_as_unknown(served: Served, http: requests.Session, path: str) -> None:
    """``path`` answers exactly as its unknown twin: same status, same body type and
    length, the same bytes once the twin's id is put back."""
    twin = UNKNOWN_TWIN[path]
    asked = http.get(served.url(path), allow_redirects=False, timeout=10)
    unknown = http.get(served.url(twin), allow_redirects=False, timeout=10)
    asked_id = path.split("/")[2].split("?")[0]
    twin_id = twin.split("/")[2].split("?")[0]
    assert asked.status_code == unknown.status_code == 404
    for header in ("Content-Type", "Content-Length"):
        assert asked.headers[header] == unknown.headers[header], header
    assert asked.content == unknown.content.replace(twin_id.encode(), asked_id.encode())


@pytest.mark.parametrize("kind", VISITORS)
def test_every_route_for_every_visitor(served: Served, kind: str) -> None:
    http = visitor(served, kind)
    seen: list[str] = []
    for path, statuses in ROUTES.items():
        answer = http.get(served.url(path), allow_redirects=False, timeout=10)
        assert answer.status_code == statuses[kind], (kind, path, answer.text)
        if answer.status_code == 302:
            assert answer.headers["Location"].startswith("/login?next="), (kind, path)
        if statuses[kind] == 404 and path in UNKNOWN_TWIN:
            same_as_unknown(served, http, path)
        seen.append(answer.text)
    if kind in FOUND_BY_SEARCH:
        page = "".join(http.get(served.url("/"), params={"q": word}, timeout=10).text
                       for word in ("gatan", "vägen"))
        found = {object_id for object_id in ("PUB", "FAIL", "NEW", "GONE", "OTHER")
                 if f'href="/listings/{object_id}"' in page}
        seen.append(page)
        assert found == FOUND_BY_SEARCH[kind]
        for query in ("PUB", "SYS-FAIL", "storgatan 1 uppsala"):
            hits = http.get(served.url("/"), params={"q": query}, timeout=10).text
            assert ('id="no-results"' in hits) == (kind == "other"), (kind, query)
            seen.append(hits.replace(query, ""))
    if kind in ("other", "anonymous"):
        everything = "\n".join(seen)
        for secret in OFF1_SECRETS:
            assert secret not in everything, (kind, secret)


@pytest.mark.parametrize("kind", VISITORS)
def test_posts_for_every_visitor(served: Served, kind: str) -> None:
    """``POST /login`` logs each user in; ``POST /logout`` needs the form's token and ends
    the session; an anonymous logout just goes to the form."""
    if kind == "anonymous":
        answer = requests.post(served.url("/logout"), allow_redirects=False, timeout=10)
        assert (answer.status_code, answer.headers["Location"]) == (302, "/login")
        http = requests.Session()
        form = http.get(served.url("/login"), timeout=10)
        refused = http.post(served.url("/login"), allow_redirects=False, timeout=10,
                            data={"csrf_token": csrf_of(form.text), "username": "nobody",
                                  "password": PASSWORD})
        assert refused.status_code == 401
        return
    http = visitor(served, kind)
    page = http.get(served.url("/"), timeout=10)
    assert http.post(served.url("/logout"), data={"csrf_token": "forged"},
                     allow_redirects=False, timeout=10).status_code == 400
    assert http.get(served.url("/"), allow_redirects=False, timeout=10).status_code == 200
    out = http.post(served.url("/logout"), data={"csrf_token": csrf_of(page.text)},
                    allow_redirects=False, timeout=10)
    assert (out.status_code, out.headers["Location"]) == (302, "/login")
    assert http.get(served.url("/"), allow_redirects=False, timeout=10).status_code == 302
