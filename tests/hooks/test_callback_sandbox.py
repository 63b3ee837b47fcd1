"""Callbacks end to end (R16): real transfers through the in-process queue to the sandbox
marketplaces over loopback HTTP, the sandbox calling the service's ``/hooks/…`` back, and
polling as the fallback for a lost callback. Prints the calls per delivered pair with and
without callbacks (``-s`` shows them; docs/benchmarks.md records a run)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from factories import listing, office, user
from http_service import Running, serve_app
from sqlalchemy import Engine

from adapters.config import load_callback_secrets
from adapters.sandbox import Sandbox
from syndication.app import create_app
from syndication.broker import in_process_worker
from syndication.cli.transfer import queue_request, start_queue
from syndication.ingest import ingest_document
from syndication.runtime import Runtime
from syndication.service import ServiceContext
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import TransferStatusRow
from syndication.transfer import Scope, wait_for_request

SECRET = "sandbox-callback-secret-0123456789"
PUBLISH_DELAY = 0.5
CONFIRM_DELAY_MS = 300
"""Polling only: checks at 0.3 s and 0.9 s after sending, the first too early, the second
after the publication."""
CALLBACK_CHECK_DELAY = 2.5
"""With callbacks: the first check 2.5 s after sending, well after the callback (0.5 s)."""


def ingest(engine: Engine, **document: Any) -> None:
    report = ingest_document(engine, json.dumps(document).encode())
    assert report.ok, report.errors


def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Setup:
    def __init__(self, database_url: str, folder: Path, *, callbacks: bool) -> None:
        self.sandbox = Sandbox(["hemnet"], publish_delay=PUBLISH_DELAY).start()
        marketplaces = self.sandbox.write_marketplaces_file(
            folder / "marketplaces.toml", max_attempts=2,
            callback_secret_env="HEMNET_CALLBACK_SECRET" if callbacks else None,
            callback_check_delay=CALLBACK_CHECK_DELAY)
        self.settings = Settings(database_url=database_url, marketplaces_file=marketplaces,
                                 outbox=folder / "outbox", confirm_delay_ms=CONFIRM_DELAY_MS,
                                 environ={"HEMNET_CALLBACK_SECRET": SECRET})
        self.runtime = Runtime.from_settings(self.settings)
        self.engine: Engine = self.runtime.engine
        self.broker = start_queue(self.settings, self.runtime)
        context = ServiceContext(settings=self.settings, engine=self.engine, contacts={},
                                 secret_key="k" * 40,
                                 callback_secrets=load_callback_secrets(self.settings))
        self._service = serve_app(create_app(context))
        self.service: Running = self._service.__enter__()
        if callbacks:
            self.sandbox.call_back(self.service.base, SECRET.encode())

    @property
    def hemnet(self):  # type: ignore[no-untyped-def]
        return self.sandbox["hemnet"]

    def transfer(self, *ids: str) -> None:
        for lid in ids:
            summary = queue_request(self.runtime, Scope("object", lid))
            assert wait_for_request(self.engine, summary.request_id, timeout=30).finished

    def row(self, listing_id: str) -> TransferStatusRow:
        with session_scope(self.engine) as session:
            row = session.get(TransferStatusRow, (listing_id, "hemnet"))
            assert row is not None
            session.expunge(row)
            return row

    def settled(self, *ids: str) -> None:
        eventually(lambda: all(self.row(lid).state in ("published", "failed") for lid in ids),
                   what="every pair settled")

    def lookups(self) -> int:
        return sum(n for (_ident, action), n in self.hemnet.calls.items() if action == "lookup")

    def close(self) -> None:
        self.sandbox.stop()
        self._service.__exit__(None, None, None)
        self.runtime.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def run(database_url: str, folder: Path, prefix: str, *, callbacks: bool,
        prepare: Callable[[Setup], None] = lambda _s: None) -> Setup:
    """Transfer four listings ``<prefix>1``…``<prefix>4`` to Hemnet and wait until each
    is settled and every publication check queued has run; the worker is stopped."""
    folder.mkdir(parents=True, exist_ok=True)
    setup = Setup(database_url, folder, callbacks=callbacks)
    ids = [f"{prefix}{i}" for i in range(1, 5)]
    ingest(setup.engine, offices=[office()], users=[user()],
           listings=[listing(lid, marketplaces=["hemnet"]) for lid in ids])
    prepare(setup)
    try:
        with in_process_worker(setup.broker, threads=4):
            setup.transfer(*ids)
            setup.settled(*ids)
            time.sleep(CALLBACK_CHECK_DELAY + 0.5)
    except BaseException:
        setup.close()
        raise
    return setup


def calls_per_pair(setup: Setup, pairs: int) -> float:
    return sum(setup.hemnet.calls.values()) / pairs


def test_callbacks_publish_and_save_lookups_against_polling(
    database_url: str, tmp_path: Path
) -> None:
    polled = run(database_url, tmp_path / "polled", "P", callbacks=False)
    polled.close()
    called = run(database_url, tmp_path / "called", "C", callbacks=True)
    try:
        for lid in ("C1", "C2", "C3", "C4"):
            row = called.row(lid)
            assert row.state == "published" and row.marketplace_id == called.hemnet.marketplace_id(
                lid)
            assert row.public_url and row.public_url.endswith(row.marketplace_id)
        assert called.hemnet.callbacks.sent["published"] == 4
        assert called.hemnet.callbacks.answers == [200] * 4
        assert 4 <= polled.lookups() <= 8, "one or two checks per pair (a late one finds it)"
        assert called.lookups() == 0, "the first check finds the pair published by its callback"
        print(f"\ncalls to Hemnet per delivered pair: polling {calls_per_pair(polled, 4):.2f}, "
              f"with callbacks {calls_per_pair(called, 4):.2f} "
              f"(+1 callback from Hemnet per pair)")
    finally:
        called.close()


def test_a_lost_callback_is_settled_by_polling_and_a_review_refusal_fails(
    database_url: str, tmp_path: Path
) -> None:
    def prepare(setup: Setup) -> None:
        setup.hemnet.callbacks.lose = 1
        setup.hemnet.callbacks.refuse_after_review("O4", "the floor plan belongs to another home")

    setup = run(database_url, tmp_path, "O", callbacks=True, prepare=prepare)
    try:
        assert setup.hemnet.callbacks.lost == 1
        assert setup.lookups() == 1, "only the pair whose callback was lost is looked up"
        assert {setup.row(lid).state for lid in ("O1", "O2", "O3")} == {"published"}
        refused = setup.row("O4")
        assert refused.state == "failed"
        assert refused.error == ("Hemnet after manual review: "
                                 "the floor plan belongs to another home")
        assert setup.hemnet.callbacks.sent == {"published": 2, "failed": 1}
    finally:
        setup.close()
