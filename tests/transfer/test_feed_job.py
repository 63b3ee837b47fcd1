"""A pull marketplace (R17) through the queue: one feed per office, published whole, recorded.

The Kyero office of the bundled example goes through the real in-process
broker, its feed through a real folder publisher; Hemnet, which the office is
licensed for too, is the in-memory marketplace of the other transfer tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine
from sqlmodel import col, select
from transfer_helpers import QUEUE_SETTINGS, Queue, ingest

from adapters.feed import FeedTransport, FolderPublisher
from feeds.validate import validate
from syndication import holds, registry
from syndication.broker import in_process_worker
from syndication.errors import TransientError
from syndication.hold_decisions import HOLD_NOTE
from syndication.store.db import session_scope
from syndication.store.guard_models import DeletionHoldRow
from syndication.transfer.feed_job import feed_file_name

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "https://feeds.example.se/kyero"
OFFICE = "KTR-SOL"


def example(office_id: str = OFFICE) -> dict[str, list[dict[str, Any]]]:
    """The bundled example's records of one office."""
    data = json.loads((ROOT / "examples" / "records.json").read_text("utf-8"))
    return {
        "offices": [o for o in data["offices"] if o["id"] == office_id],
        "users": [u for u in data["users"] if u["office_id"] == office_id],
        "listings": [x for x in data["listings"] if x["office_id"] == office_id],
    }


class FlakyFolder(FolderPublisher):
    """A folder publisher whose next ``failures`` publications fail as a full disk would."""

    failures = 0
    published = 0

    def publish(self, file_name: str, feed: Any) -> str:
        if self.failures:
            self.failures -= 1
            raise TransientError("No space left on device", marketplace=self.name)
        self.published += 1
        return super().publish(file_name, feed)


@pytest.fixture
def queue(engine: Engine, tmp_path: Path) -> Iterator[Queue]:
    q = Queue(engine, QUEUE_SETTINGS)
    folder = tmp_path / "served"
    folder.mkdir()
    q.feed_folder = folder  # type: ignore[attr-defined]
    q.publisher = FlakyFolder("kyero", folder, PUBLIC)  # type: ignore[attr-defined]
    q.runtime.transports = {**q.transports, "kyero": FeedTransport(q.publisher)}  # type: ignore[attr-defined]
    ingest(engine, **example())
    with in_process_worker(q.broker, threads=4):
        yield q


def feed_ids(queue: Queue) -> list[str]:
    document = (queue.feed_folder / feed_file_name("kyero", OFFICE)).read_bytes()  # type: ignore[attr-defined]
    validate(registry.get("kyero").schema, document)
    return [str(i) for i in etree.fromstring(document).xpath("/root/property/id/text()")]


def kyero_states(queue: Queue) -> dict[str, str]:
    ids = [x["id"] for x in example()["listings"]]
    return {lid: queue.states(lid).get("kyero", "-") for lid in ids}


def test_the_office_feed_is_published_whole_and_each_listing_recorded(queue: Queue) -> None:
    outcome = queue.transfer("office", OFFICE)
    assert outcome.finished and not [f for f in outcome.failures if f.marketplace == "kyero"]
    ids = feed_ids(queue)
    assert sorted(ids) == sorted(x["id"] for x in example()["listings"])
    address = f"{PUBLIC}/{feed_file_name('kyero', OFFICE)}"
    for listing_id in ids:
        status = queue.status(listing_id, "kyero")
        assert (status.state, status.public_url, status.action) == ("published", address, "create")
    assert queue.publisher.published == 1  # type: ignore[attr-defined]
    assert all(d.marketplace != "kyero" for t in queue.transports.values() for d in t.deliveries)


def test_a_transfer_of_one_listing_rebuilds_the_whole_feed(queue: Queue) -> None:
    queue.transfer("office", OFFICE)
    withdrawn = example()
    gone = withdrawn["listings"][0]
    gone["state"] = "withdrawn"
    ingest(queue.engine, listings=[gone])
    outcome = queue.transfer("object", gone["id"])
    assert outcome.finished
    assert gone["id"] not in feed_ids(queue)
    assert len(feed_ids(queue)) == len(withdrawn["listings"]) - 1
    status = queue.status(gone["id"], "kyero")
    assert (status.state, status.action) == ("deleted", "delete")
    assert queue.history(gone["id"], "kyero")[-2:] == ["queued", "deleted"]
    others = {lid: s for lid, s in kyero_states(queue).items() if lid != gone["id"]}
    assert set(others.values()) == {"published"}


def test_a_listing_kyero_cannot_take_fails_with_the_reason_and_stays_out(queue: Queue) -> None:
    records = example()
    bad = records["listings"][1]
    bad["currency"] = "SEK"
    ingest(queue.engine, listings=[bad])
    outcome = queue.transfer("office", OFFICE)
    assert bad["id"] not in feed_ids(queue)
    status = queue.status(bad["id"], "kyero")
    assert status.state == "failed"
    assert "Kyero" in status.error and "currency" in status.error
    assert any(f.listing_id == bad["id"] and f.marketplace == "kyero" for f in outcome.failures)


def test_a_publication_that_fails_once_is_retried_and_records_after(queue: Queue) -> None:
    queue.publisher.failures = 1  # type: ignore[attr-defined]
    outcome = queue.transfer("office", OFFICE)
    assert outcome.finished
    assert set(kyero_states(queue).values()) == {"published"}
    assert queue.publisher.published == 1  # type: ignore[attr-defined]


def test_a_feed_never_published_strands_no_pair(queue: Queue) -> None:
    """Past the retry budget every queued pair of the office ends failed, saying why."""
    queue.publisher.failures = 1 + QUEUE_SETTINGS.max_retries  # type: ignore[attr-defined]
    outcome = queue.transfer("office", OFFICE)
    assert outcome.finished
    for listing_id, state in kyero_states(queue).items():
        assert state == "failed", listing_id
        error = queue.status(listing_id, "kyero").error
        assert "could not be published" in error and "No space left" in error
        assert f"gave up after {1 + QUEUE_SETTINGS.max_retries} attempts" in error
    assert not (queue.feed_folder / feed_file_name("kyero", OFFICE)).exists()  # type: ignore[attr-defined]


def _kyero_holds(queue: Queue) -> list[str]:
    with session_scope(queue.engine) as session:
        return [row.id for row in session.exec(select(DeletionHoldRow)
                                               .where(col(DeletionHoldRow.state) == "held"))
                if any(p["marketplace"] == "kyero" for p in row.pairs)]


def _withdraw_every_listing(queue: Queue) -> tuple[Path, bytes, str]:
    """Publish the office's feed, then withdraw every listing at once, which R15 holds:
    the feed file, its bytes before, and the one hold on Kyero."""
    queue.transfer("office", OFFICE)
    feed = queue.feed_folder / feed_file_name("kyero", OFFICE)  # type: ignore[attr-defined]
    before = feed.read_bytes()
    records = example()
    for listing in records["listings"]:
        listing["state"] = "withdrawn"
    ingest(queue.engine, listings=records["listings"])
    (hold_id,) = _kyero_holds(queue)
    return feed, before, hold_id


def test_an_office_with_nothing_for_kyero_keeps_the_last_feed_and_says_why(queue: Queue) -> None:
    feed, before, hold_id = _withdraw_every_listing(queue)
    outcome = queue.transfer("office", OFFICE)
    assert outcome.finished and feed.read_bytes() == before
    for listing_id, state in kyero_states(queue).items():
        assert state == "published", listing_id
        assert HOLD_NOTE in queue.status(listing_id, "kyero").error

    holds.confirm(queue.engine, hold_id, "admin:anna")
    outcome = queue.transfer("office", OFFICE)
    assert outcome.finished
    assert feed.read_bytes() == before
    for listing_id, state in kyero_states(queue).items():
        assert state == "failed", listing_id
        assert "takes no empty feed" in queue.status(listing_id, "kyero").error


def test_a_held_kyero_delete_keeps_the_feed_while_another_listing_waits(queue: Queue) -> None:
    feed, before, hold_id = _withdraw_every_listing(queue)
    back = dict(example()["listings"][0], headline="Back on the market")
    ingest(queue.engine, listings=[back])
    outcome = queue.transfer("object", back["id"])
    assert outcome.finished
    assert feed.read_bytes() == before, "no feed while the office's deletes are held"
    status = queue.status(back["id"], "kyero")
    assert status.state == "published"
    assert HOLD_NOTE in status.error and hold_id in status.error
    assert queue.publisher.published == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("office_id", "name"),
    [("KTR-SOL", "kyero-KTR-SOL.xml"), ("K:1@x", None)],
)
def test_feed_file_names_are_plain(office_id: str, name: str | None) -> None:
    file_name = feed_file_name("kyero", office_id)
    if name is not None:
        assert file_name == name
    assert "/" not in file_name and ":" not in file_name and "@" not in file_name
    assert file_name.startswith("kyero-") and file_name.endswith(".xml")
