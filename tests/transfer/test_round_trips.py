"""A transfer job costs at most two transactions and two pool checkouts (issue 13).

Real Redis broker, a real dramatiq worker with the production middleware, the
sandbox marketplaces over loopback HTTP, a real store (SQLite and
PostgreSQL). SQLAlchemy's engine events count, per transfer message, every
``begin``, ``commit`` and pool ``checkout`` made on the worker thread that runs
it (attributed through dramatiq's ``CurrentMessage``): a delivered create, an
update, an unchanged job and a failed one each stay within two of each. The
outbox row of a ``sent`` listing's publication check is part of the job's
second transaction; its delete is the relay's, in batches, on a thread of its
own. No timings are asserted.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.middleware import CurrentMessage
from factories import listing, office, user
from sqlalchemy import Engine, event
from test_redis_sandbox import RedisSetup, eventually
from transfer_helpers import ingest

from syndication.broker import in_process_worker

pytestmark = pytest.mark.redis

TRANSFER_ACTOR = "transfer_listing"


class RoundTrips:
    """Counts begins, commits and checkouts per transfer message while installed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.lock = threading.Lock()

    def _note(self, what: str) -> None:
        message = CurrentMessage.get_current_message()
        if message is None or message.actor_name != TRANSFER_ACTOR:
            return
        with self.lock:
            self.counts[message.message_id][what] += 1

    def begin(self, *_: Any) -> None:
        self._note("begin")

    def commit(self, *_: Any) -> None:
        self._note("commit")

    def checkout(self, *_: Any) -> None:
        self._note("checkout")

    def __enter__(self) -> RoundTrips:
        event.listen(self.engine, "begin", self.begin)
        event.listen(self.engine, "commit", self.commit)
        event.listen(self.engine, "checkout", self.checkout)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "begin", self.begin)
        event.remove(self.engine, "commit", self.commit)
        event.remove(self.engine, "checkout", self.checkout)

    def take(self) -> list[Counter[str]]:
        with self.lock:
            taken = list(self.counts.values())
            self.counts.clear()
        return taken


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[RedisSetup]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = RedisSetup(url, redis_url, tmp_path)
    yield s
    s.close()


def within_two(trips: RoundTrips, jobs: int, what: str) -> None:
    per_job = trips.take()
    assert len(per_job) >= jobs, f"{what}: every job was counted ({len(per_job)})"
    for counts in per_job:
        assert counts["begin"] <= 2, f"{what}: {dict(counts)}"
        assert counts["commit"] <= 2, f"{what}: {dict(counts)}"
        assert counts["checkout"] <= 2, f"{what}: {dict(counts)}"
        assert counts["begin"] >= 1, f"{what}: the job wrote its outcome"


def test_each_job_takes_at_most_two_transactions_and_two_checkouts(setup: RedisSetup) -> None:
    ingest(setup.engine, offices=[office()], users=[user()],
           listings=[listing("O1", marketplaces=["hemnet", "blocket"]),
                     listing("O2", marketplaces=["hemnet", "blocket"]),
                     listing("BARE", marketplaces=["hemnet", "blocket"], images=[])])
    with in_process_worker(setup.broker, threads=4), RoundTrips(setup.engine) as trips:
        created = setup.transfer()
        assert created.counts.get("failed") == 2, created.counts
        assert created.counts.get("sent", 0) + created.counts.get("published", 0) == 4
        within_two(trips, 6, "a delivered create, and unmet conditions failed")

        eventually(lambda: all(setup.state(lid, m).state == "published"  # type: ignore[attr-defined]
                               for lid in ("O1", "O2") for m in ("hemnet", "blocket")),
                   what="publication")
        trips.take()  # the publication checks are no transfer jobs
        unchanged = setup.transfer()
        assert unchanged.unchanged_deliveries == 4, unchanged.counts
        within_two(trips, 4, "an unchanged job")

        ingest(setup.engine, listings=[listing("O1", marketplaces=["hemnet", "blocket"],
                                               price=4_100_000)])
        setup.transfer()
        hemnet = setup.sandbox["hemnet"]
        assert [d.listing_id for d in hemnet.documents(action="update")] == ["O1"]
        within_two(trips, 1, "an update")
    assert isinstance(setup.broker, dramatiq.Broker)
