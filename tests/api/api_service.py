"""The API served for tests: the service over real HTTP on loopback, on SQLite and PostgreSQL.

:func:`http_service.serve_app` runs :func:`syndication.app.create_app` as
``syndication serve`` does, in a thread on a free port of 127.0.0.1. Every
response a test gets through :class:`Api.http` is checked against the
``/api/v1/openapi.json`` the server itself serves (:mod:`openapi_check`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests
from api_data import FAST, PASSWORD, USERS, Tenants
from http_service import serve_app
from openapi_check import CheckedSession, OpenApiCheck
from sqlalchemy import Engine

from syndication.app import create_app
from syndication.records import Contacts
from syndication.service import ServiceContext
from syndication.settings import Settings

CONTACTS = {"hemnet": Contacts(name="Hemnet mäklarsupport", email="support@hemnet.example")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Api:
    """A served API over a seeded store: its URL, checked HTTP, and every principal's token."""

    url: str
    http: CheckedSession
    engine: Engine
    tenants: Tenants
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str | None) -> dict[str, str]:
        """The ``Authorization`` header of ``who``: a user name, ``key:K1``, or ``None``."""
        if who is None:
            return {}
        if who.startswith("key:"):
            return {"Authorization": f"Bearer {self.tenants.keys[who[4:]]}"}
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def call(self, method: str, path: str, who: str | None = None, **kwargs: Any
             ) -> requests.Response:
        headers = {**self.auth(who), **kwargs.pop("headers", {})}
        return self.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def log_in(self, user: str, password: str = PASSWORD) -> str:
        response = self.call("POST", "/sessions", json={"user": user, "password": password})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])


def service_context(engine: Engine, folder: Path, *, broker: Any = None,
                    environ: dict[str, str] | None = None, **settings: Any) -> ServiceContext:
    """The context of a test's service: its store, a fast hasher, the outbox in ``folder``."""
    base = Settings(database_url=str(engine.url), outbox=folder / "outbox", worker_threads=2,
                    environ=environ or {})
    return ServiceContext(settings=replace(base, **settings), engine=engine, contacts=CONTACTS,
                          secret_key="s" * 64, hasher=FAST, broker=broker)


@contextmanager
def served_api(context: ServiceContext, tenants: Tenants, *, log_in: bool = True
               ) -> Iterator[Api]:
    """The API of ``context`` served on loopback; every response checked against the
    document it serves; with ``log_in`` every user of :data:`USERS` logged in."""
    with serve_app(create_app(context)) as served:
        document = requests.get(f"{served.base}/api/v1/openapi.json", timeout=10).json()
        http = CheckedSession(served.base, OpenApiCheck(document))
        api = Api(served.base, http, context.engine, tenants)
        if log_in:
            api.tokens = {user: api.log_in(user) for user in USERS}
        try:
            yield api
        finally:
            http.close()
        assert http.openapi is not None and http.openapi.checked > 0, "no response was checked"


