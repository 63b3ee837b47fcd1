"""Portal → photo intake → the next transfer sends the new images to the sandbox marketplaces.

Nothing is faked: the real ingest, the in-process dramatiq queue, the HTTP
transports and the sandbox marketplaces on loopback, the portal stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import factories
import pytest
from photo_helpers import TOKEN, image_bytes, portal_images

from adapters.photo_portal import PhotoPortalClient
from adapters.portal_standin import PortalStandIn
from adapters.sandbox import Sandbox
from syndication.broker import in_process_worker
from syndication.cli.transfer import queue_request, start_queue
from syndication.ingest import ingest_document
from syndication.photos import PhotoIntake
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.transfer import RequestOutcome, Scope, wait_for_request

RECORDS: dict[str, Any] = factories.document(
    listings=[factories.listing("O1", system_id="NEXT-4711")]
)
"""The factory's office, broker and villa, whose photo assignment names ``NEXT-4711``."""


class World:
    def __init__(self, folder: Path, portal: PortalStandIn) -> None:
        self.sandbox = Sandbox().start()
        self.settings = Settings(
            database_url=f"sqlite:///{folder / 'store.db'}",
            marketplaces_file=self.sandbox.write_marketplaces_file(folder / "marketplaces.toml"),
            outbox=folder / "outbox",
            media_dir=folder / "media",
            media_base_url="https://media.example.se/",
            photo_portal_url=portal.url,
            environ={"SYNDICATION_PHOTO_PORTAL_TOKEN": TOKEN},
        )
        self.runtime = Runtime.from_settings(self.settings)
        self.broker = start_queue(self.settings, self.runtime)

    def ingest(self) -> None:
        assert ingest_document(self.runtime.engine, json.dumps(RECORDS).encode()).ok

    def transfer(self) -> RequestOutcome:
        summary = queue_request(self.runtime, Scope("all"))
        outcome = wait_for_request(self.runtime.engine, summary.request_id, timeout=60)
        assert outcome.finished, outcome
        return outcome

    def pull_photos(self) -> None:
        with PhotoPortalClient.from_settings(self.settings) as portal:
            intake = PhotoIntake.from_settings(self.runtime.engine, portal, self.settings)
            assert intake.pull().ok

    def close(self) -> None:
        self.sandbox.stop()
        self.runtime.close()


@pytest.fixture
def world(tmp_path: Path, portal: PortalStandIn) -> Iterator[World]:
    w = World(tmp_path, portal)
    with in_process_worker(w.broker, threads=2):
        yield w
    w.close()


def test_the_next_transfer_carries_the_new_images_and_only_once(
    world: World, portal: PortalStandIn
) -> None:
    world.ingest()
    world.transfer()
    hemnet = world.sandbox["hemnet"]
    assert hemnet.creations["O1"] == 1
    assignment = portal.create_assignment("NEXT-4711", "Storgatan 1")
    portal.upload_image(assignment, image_bytes(color="navy"), title="Fasad", tag="fasade")
    portal.set_status(assignment, 1)

    world.pull_photos()
    world.transfer()

    (update,) = hemnet.documents(action="update", listing_id="O1")
    (row,) = portal_images(world.runtime.engine, "O1")
    assert row.url.startswith("https://media.example.se/")
    assert row.url.encode() in update.document and b"Fasad" in update.document
    assert world.sandbox["blocket"].documents(action="update", listing_id="O1")
    assert portal.assignment(assignment).status == 2

    calls = hemnet.call_count(), world.sandbox["blocket"].call_count()
    world.ingest()
    again = world.transfer()

    assert len(portal_images(world.runtime.engine, "O1")) == 1, "ingest keeps portal images"
    assert (hemnet.call_count(), world.sandbox["blocket"].call_count()) == calls
    assert again.unchanged == again.total
