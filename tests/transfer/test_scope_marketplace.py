"""A transfer scope on one marketplace: only that marketplace's pairs are queued or recorded.

"Försök igen" on one pair, ``POST /transfers`` with ``marketplace`` and
``syndication transfer --marketplace`` all come down to this: the fan-out
chooses the listing's pairs as always, then keeps those on the scope's
marketplace alone, so the other marketplaces' rows and histories are not
touched. The scope is stored as text with its request, so a fan-out taken over
by a relay keeps the marketplace too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from factories import listing, office, user
from sqlalchemy import Engine
from transfer_helpers import QUEUE_SETTINGS, FakeTransport, Queue, ingest

from syndication.broker import in_process_worker
from syndication.errors import UnknownMarketplace
from syndication.runtime import Runtime
from syndication.store.db import session_scope
from syndication.store.models import TransferRequestRow, utcnow
from syndication.store.repository import history
from syndication.transfer import Scope, request_outcome, request_transfer
from syndication.transfer.common import JobRef
from syndication.transfer.request import resume_stalled_fan_outs


@pytest.mark.parametrize(("scope", "text"), [
    (Scope("all"), "all"),
    (Scope("office", "K1"), "office:K1"),
    (Scope("object", "O1"), "object:O1"),
    (Scope("object", "O:1@x", "hemnet"), "object:O:1@x marketplace:hemnet"),
    (Scope("office", "K1", "blocket"), "office:K1 marketplace:blocket"),
    (Scope("all", None, "hittahem"), "all marketplace:hittahem"),
])
def test_a_scope_is_written_and_read_back_the_same(scope: Scope, text: str) -> None:
    assert str(scope) == text
    assert Scope.parse(text) == scope


@pytest.mark.parametrize("text", ["object:O1 marketplace:", "all:x", "object", "nothing:1"])
def test_a_text_that_is_no_scope_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a transfer scope"):
        Scope.parse(text)


def test_an_unknown_marketplace_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownMarketplace, match="hemnet"):
        Scope("object", "O1", "finn")


class Recording:
    """A scheduler that records the jobs a fan-out staged."""

    def __init__(self) -> None:
        self.jobs: list[JobRef] = []

    def transfer(self, session: object, jobs: list[JobRef]) -> None:
        self.jobs.extend(jobs)

    def publish_feed(self, session: object, office_id: str, marketplace: str,
                     request_id: str) -> None:
        raise AssertionError("no pull marketplace here")


def _events(engine: Engine, listing_id: str, marketplace: str) -> list[tuple[str, str | None]]:
    with session_scope(engine) as session:
        return [(e.state, e.request_id) for e in history(session, listing_id, marketplace)]


@pytest.fixture
def any_queue(engine: Engine) -> Iterator[Queue]:
    """The in-process queue on SQLite and on PostgreSQL."""
    q = Queue(engine, replace(QUEUE_SETTINGS))
    with in_process_worker(q.broker, threads=4):
        yield q


def test_a_listing_transferred_to_one_marketplace_leaves_the_others_untouched(
    any_queue: Queue,
) -> None:
    q, engine = any_queue, any_queue.engine
    ingest(engine, offices=[office(licence=["hemnet", "blocket", "hittahem"])],
           users=[user()], listings=[listing("O1", marketplaces=["hemnet", "blocket"])])
    q.transports["hemnet"].reject["O1"] = "422 missing price"
    first = q.transfer("object", "O1")
    assert first.failed == 1 and q.states("O1") == {
        "hemnet": "failed", "blocket": "published", "hittahem": "not_selected"}
    before = {name: _events(engine, "O1", name) for name in ("blocket", "hittahem")}
    sent_before = len(q.transports["blocket"].sent())

    del q.transports["hemnet"].reject["O1"]
    summary = request_transfer(q.runtime, Scope("object", "O1", "hemnet"), q.scheduler)
    q.join()
    outcome = request_outcome(engine, summary.request_id)
    assert (summary.jobs, summary.recorded, outcome.total) == (1, 0, 1)
    assert q.states("O1") == {"hemnet": "published", "blocket": "published",
                              "hittahem": "not_selected"}
    assert {name: _events(engine, "O1", name) for name in ("blocket", "hittahem")} == before
    assert len(q.transports["blocket"].sent()) == sent_before


def test_a_resumed_fan_out_keeps_its_marketplace(engine: Engine) -> None:
    ingest(engine, offices=[office()], users=[user()],
           listings=[listing(lid) for lid in ("O1", "O2", "O3")])
    runtime = Runtime(settings=QUEUE_SETTINGS, engine=engine,
                      transports={name: FakeTransport(name) for name in ("hemnet", "blocket")})
    with session_scope(engine) as session:
        session.add(TransferRequestRow(
            id="r-stalled", scope=str(Scope("office", "K1", "blocket")), created_at=utcnow(),
            fan_out_owner="gone", fan_out_until=utcnow() - timedelta(seconds=1)))
    sweep = Recording()
    assert resume_stalled_fan_outs(runtime, sweep, owner="sweep") == 1
    assert sorted((j.listing_id, j.marketplace) for j in sweep.jobs) == [
        ("O1", "blocket"), ("O2", "blocket"), ("O3", "blocket")]
    assert _events(engine, "O1", "hemnet") == []
