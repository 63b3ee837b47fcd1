"""The web view tried as an attacker would, over real HTTP on 127.0.0.1.

A burst of failed logins leaves every page answering and the login refusing
with 429; ``next`` never leads off-site; a NUL byte is a 400 on both stores;
an unexpected error is logged redacted.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from sqlalchemy import Engine
from web_server import PASSWORD, Served, csrf_of, english, login, serve

from syndication.throttle import FREE_ATTEMPTS
from syndication.web.checks import browser_form

PAGES = {"/": 200, "/?q=PUB": 200, "/listings/PUB": 200, "/listings/NOPE": 404,
         "/offices/OFF1": 200, "/offices/OFF1?state=": 200, "/offices/NOPE": 404}


@pytest.fixture
def served(seeded_any: Engine) -> Iterator[Served]:
    with serve(seeded_any) as running:
        yield running


def post_login(served: Served, http: requests.Session, csrf: str, username: str,
               password: str, path: str = "/login") -> requests.Response:
    return http.post(served.url(path), data={"csrf_token": csrf, "username": username,
                                             "password": password},
                     allow_redirects=False, timeout=30)


def burst(served: Served, username: str, n: int = 20) -> Counter[int]:
    """``n`` failed logins for ``username`` at once, each from a session of its own."""
    forms = []
    for _ in range(n):
        http = requests.Session()
        forms.append((http, csrf_of(http.get(served.url("/login"), timeout=10).text)))
    start = threading.Barrier(n)

    def guess(k: int) -> int:
        http, csrf = forms[k]
        start.wait()
        return post_login(served, http, csrf, username, f"guess-{k}").status_code

    with ThreadPoolExecutor(max_workers=n) as pool:
        return Counter(pool.map(guess, range(n)))


def test_a_burst_of_failed_logins_leaves_the_view_up_and_answers_429(served: Served) -> None:
    staff, answer = login(served)
    assert answer.status_code == 302
    assert burst(served, "anna") == {401: FREE_ATTEMPTS, 429: 20 - FREE_ATTEMPTS}
    for path, status in PAGES.items():
        assert staff.get(served.url(path), timeout=10).status_code == status, path
    assert requests.get(served.url("/login"), timeout=10).status_code == 200

    http = english()
    csrf = csrf_of(http.get(served.url("/login"), timeout=10).text)
    refused = post_login(served, http, csrf, "anna", PASSWORD)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "try again in 1 s" in refused.text

    burst(served, "nobody-here")
    unknown = post_login(served, http, csrf, "nobody-here", PASSWORD)
    assert (unknown.status_code, unknown.headers["Retry-After"]) == (429, "1")
    assert unknown.text == refused.text

    served.clock.advance(seconds=1)
    assert post_login(served, http, csrf, "anna", PASSWORD).status_code == 302


@pytest.mark.parametrize(
    "target",
    ["/\t/evil.example/path", "/\\evil.example", "//evil.example", "/\\\\evil.example",
     "https:evil.example", "\t//evil.example", "/\n/evil.example", "/a\nb", "/\r\nSet-Cookie:x"],
)
def test_next_never_leads_off_site(served: Served, target: str) -> None:
    http = requests.Session()
    form = http.get(served.url("/login"), params={"next": target}, timeout=10)
    assert form.status_code == 200
    answer = http.post(form.url, data={"csrf_token": csrf_of(form.text), "username": "anna",
                                       "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    landed = urlsplit(urljoin(served.base + "/", browser_form(location)))
    assert landed.netloc == urlsplit(served.base).netloc, location
    assert not set(location) & {"\r", "\n", "\t", "\\"}, location


@pytest.mark.parametrize(
    ("path", "api"),
    [("/?q=Stor%00gatan", False), ("/listings/PU%00B", False), ("/offices/OFF1?state=%00", False),
     ("/?q%00=x", False), ("/api/v1/listings/PU%00B/status", True),
     ("/api/v1/offices/OF%00F1/status", True), ("/api/v1/offices/OFF1/status?state=%00", True)],
)
def test_a_nul_byte_in_a_parameter_is_a_400(served: Served, path: str, api: bool) -> None:
    staff, _ = login(served)
    answer = staff.get(served.url(path), timeout=10)
    assert answer.status_code == 400, answer.text
    assert "NUL byte" in (answer.json()["message"] if api else answer.text)


def test_a_nul_byte_in_a_login_field_is_a_400(served: Served) -> None:
    http = requests.Session()
    csrf = csrf_of(http.get(served.url("/login"), timeout=10).text)
    for username, password in (("an\x00na", PASSWORD), ("anna", "Vin\x00ter")):
        answer = post_login(served, http, csrf, username, password)
        assert answer.status_code == 400
        assert "holds a NUL byte" in answer.text
    assert post_login(served, http, csrf, "anna", PASSWORD).status_code == 302


def test_an_unexpected_error_is_logged_redacted_and_answers_500(
    served: Served, captured_logs: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        password = "Hemlis-99"  # noqa: F841 - a local a traceback with locals would show
        raise RuntimeError(f"lookup failed: password={PASSWORD} stored {served.password_hash}")

    served.app.add_api_route("/api/v1/broken", broken)
    served.app.add_api_route("/broken", broken)
    staff, _ = login(served)
    caplog.set_level(logging.DEBUG)
    answer = staff.get(served.url("/api/v1/broken"), timeout=10)
    assert answer.status_code == 500
    assert answer.json()["message"] == "internal error; it is logged"
    page = staff.get(served.url("/broken"), timeout=10)
    assert page.status_code == 500
    assert page.text == "internal error; it is logged"
    assert page.headers["Content-Type"].startswith("text/plain")
    logged = captured_logs.getvalue()
    assert "web_request_failed" in logged and "RuntimeError: lookup failed" in logged
    assert '"path": "/broken"' in logged and '"path": "/api/v1/broken"' in logged
    for secret in (PASSWORD, served.password_hash, "$argon2", "Hemlis-99"):
        assert secret not in logged
        assert secret not in caplog.text
        assert secret not in answer.text + page.text
