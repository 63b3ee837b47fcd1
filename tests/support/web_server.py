"""The support web app served over real HTTP on 127.0.0.1, with a clock the test moves."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import Engine
from sqlmodel import Session
from support_data import CONTACTS
from werkzeug.serving import make_server

from syndication.passwords import set_password
from syndication.web import create_app

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "Vinter-2026"


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
    app: Flask = field(repr=False)

    def url(self, path: str) -> str:
        return self.base + path


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


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


@contextmanager
def serve(engine: Engine) -> Iterator[Served]:
    """Give anna a password, start the app on a free loopback port, stop it afterwards."""
    clock = MovableClock()
    with Session(engine) as session:
        row = set_password(session, "anna", PASSWORD, old_password=None, hasher=FAST,
                           now=clock() - timedelta(days=1))
        stored = str(row.password_hash)
        session.commit()
    app = create_app(engine, CONTACTS, secret_key="test-secret-key-0123456789",
                     clock=clock, hasher=FAST)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", clock, stored, app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
