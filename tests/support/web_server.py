"""The support web view served over real HTTP on 127.0.0.1, with a clock the test moves."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from argon2 import PasswordHasher
from fastapi import FastAPI
from http_service import TEST_LIMITS, Running, serve_app
from sqlalchemy import Engine
from sqlmodel import Session
from support_data import CONTACTS

from syndication.app import create_app
from syndication.http_server import ServerLimits
from syndication.passwords import set_password
from syndication.service import ServiceContext
from syndication.settings import Settings

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "Vinter-2026"
SECRET = "test-secret-key-0123456789-abcdefghij"


@dataclass
class MovableClock:
    now: datetime = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Served:
    base: str
    clock: MovableClock
    password_hash: str
    app: FastAPI = field(repr=False)
    running: Running = field(repr=False)
    engine: Engine | None = field(default=None, repr=False)

    def url(self, path: str) -> str:
        return self.base + path


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def who(served: Served, http: requests.Session) -> str | None:
    """The user a session is logged in as, read from a page, or ``None`` when the page
    sends it to the login form."""
    page = http.get(served.url("/"), allow_redirects=False, timeout=10)
    if page.status_code == 302:
        assert page.headers["Location"].startswith("/login"), page.headers["Location"]
        return None
    assert page.status_code == 200, page.status_code
    match = re.search(r'<span id="who">([^<]*)</span>', page.text)
    assert match, "a logged-in page names its user"
    return match.group(1)


def english() -> requests.Session:
    """A browser that asks for English (the view's second language): for tests that read
    the domain's English words on a page."""
    http = requests.Session()
    http.headers["Accept-Language"] = "en"
    return http


def login(served: Served, username: str = "anna", password: str = PASSWORD,
          http: requests.Session | None = None) -> tuple[requests.Session, requests.Response]:
    """Log in through the form like a browser: fetch it, post it with its token."""
    http = http or requests.Session()
    form = http.get(served.url("/login"), timeout=10)
    answer = http.post(
        served.url("/login"),
        data={"csrf_token": csrf_of(form.text), "username": username, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    return http, answer


def give_password(engine: Engine, user_id: str, clock: MovableClock) -> str:
    """Set ``user_id``'s password to :data:`PASSWORD` a day ago; the stored hash."""
    with Session(engine) as session:
        row = set_password(session, user_id, PASSWORD, old_password=None, hasher=FAST,
                           now=clock() - timedelta(days=1))
        stored = str(row.password_hash)
        session.commit()
    return stored


@contextmanager
def serve(engine: Engine, limits: ServerLimits = TEST_LIMITS) -> Iterator[Served]:
    """Give anna a password, serve the app on a free loopback port, stop it afterwards."""
    clock = MovableClock()
    stored = give_password(engine, "anna", clock)
    with tempfile.TemporaryDirectory(prefix="syndication-web-outbox-") as outbox:
        # each server drops its documents in an outbox of its own: the tests run in
        # parallel processes, and the same listing must not be written by two at once
        context = ServiceContext(settings=Settings(outbox=Path(outbox)), engine=engine,
                                 contacts=CONTACTS, secret_key=SECRET, clock=clock, hasher=FAST)
        app = create_app(context)
        with serve_app(app, limits) as running:
            yield Served(running.base, clock, stored, app, running, engine)


def wait_settled(served: Served, http: requests.Session, listing_id: str,
                 marketplaces: tuple[str, ...] = ()) -> dict[str, str]:
    """Each marketplace's state once none of ``marketplaces`` (every one, when empty) is
    ``queued``, as the page's script polls them; fails after 60 s with the pairs as last
    seen (their errors and notes say what held them)."""
    deadline = time.monotonic() + 60
    while True:
        pairs = http.get(served.url(f"/listings/{listing_id}/status.json"), timeout=10).json()
        states = {p["marketplace"]: p["state"] for p in pairs["marketplaces"]}
        waited = [states[m] for m in marketplaces] if marketplaces else list(states.values())
        if "queued" not in waited:
            return states
        assert time.monotonic() < deadline, f"still queued after 60 s: {pairs['marketplaces']}"
        time.sleep(0.2)
