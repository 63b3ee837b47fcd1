"""New portal images reach the feeds; the actor and the CLI run the same intake."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lxml import etree
from photo_helpers import TOKEN, Clock, add_listing, image_bytes, portal_images
from sqlalchemy import Engine

from adapters.photo_portal import PhotoPortalClient
from adapters.portal_standin import PortalStandIn
from syndication import registry
from syndication.broker import in_process_worker, setup_broker
from syndication.cli import main
from syndication.photos import PhotoIntake, unresolved_problems
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.repository import load_feed_input


def hemnet_document(engine: Engine, listing_id: str) -> bytes:
    with session_scope(engine) as session:
        feed_input = load_feed_input(session, listing_id)
    assert feed_input is not None
    return registry.get("hemnet").build(feed_input)


def test_the_next_hemnet_document_carries_the_new_images(
    engine: Engine, portal: PortalStandIn, client: PhotoPortalClient, media_dir: Path, clock: Clock
) -> None:
    add_listing(engine, "OBJ1", "SYS-1", desktop_images=1)
    before = hemnet_document(engine, "OBJ1")
    assignment = portal.create_assignment("SYS-1")
    portal.upload_image(assignment, image_bytes(color="red"), title="Vardagsrum", order=2)
    portal.upload_image(assignment, image_bytes(color="blue"), title="Fasad", order=1)
    portal.set_status(assignment, 1)

    PhotoIntake(
        engine, client, media_dir, media_base_url="https://media.example/p", clock=clock
    ).pull()
    after = hemnet_document(engine, "OBJ1")

    assert hashlib.sha256(after).digest() != hashlib.sha256(before).digest()
    root = etree.fromstring(after)
    images = root.find("images")
    assert images is not None
    urls = [image.findtext("url") for image in images]
    captions = [image.findtext("caption") for image in images]
    new_urls = [row.url for row in portal_images(engine, "OBJ1")]
    assert urls == ["https://img.example/OBJ1/0.jpg", *new_urls]
    assert all(url.startswith("https://media.example/p/") for url in new_urls)
    assert captions == [None, "Fasad", "Vardagsrum"]
    assert hemnet_document(engine, "OBJ1") == after, "unchanged since: R10 sends nothing more"


def intake_settings(portal: PortalStandIn, tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "SYNDICATION_DATABASE_URL": database_url,
        "SYNDICATION_PHOTO_PORTAL_URL": portal.url,
        "SYNDICATION_PHOTO_PORTAL_TOKEN": TOKEN,
        "SYNDICATION_MEDIA_DIR": str(tmp_path / "media"),
    }


def test_the_pull_photos_actor_runs_the_intake(
    sqlite_engine: Engine, portal: PortalStandIn, tmp_path: Path, clock: Clock
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    assignment = portal.create_assignment("SYS-1")
    portal.upload_image(assignment, image_bytes(), title="Fasad")
    portal.set_status(assignment, 1)
    settings = Settings.from_env(intake_settings(portal, tmp_path, str(sqlite_engine.url)))
    broker = setup_broker(settings, Runtime(settings=settings, engine=sqlite_engine, clock=clock))
    from syndication.jobs.photos import pull_photos

    assert pull_photos.actor_name == "pull_photos"
    with in_process_worker(broker, threads=1) as worker:
        pull_photos.send()
        broker.join(pull_photos.queue_name, fail_fast=True)
        worker.join()

    assert portal.assignment(assignment).status == 2
    assert [row.caption for row in portal_images(sqlite_engine, "OBJ1")] == ["Fasad"]


@pytest.fixture
def cli_env(portal: PortalStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for name, value in intake_settings(portal, tmp_path, url).items():
        monkeypatch.setenv(name, value)
    engine = make_engine(url)
    migrate(engine)
    return engine


def test_the_photos_command_reports_and_fails_on_problems(
    cli_env: Engine,
    portal: PortalStandIn,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_listing(cli_env, "OBJ1", "SYS-1")
    good = portal.create_assignment("SYS-1")
    portal.upload_image(good, image_bytes())
    portal.upload_image(good, image_bytes(color="red"))
    portal.set_status(good, 1)
    unknown = portal.create_assignment("SYS-404")
    portal.upload_image(unknown, image_bytes())
    portal.set_status(unknown, 1)

    status = main(["photos", "--no-progress"])

    out, err = capsys.readouterr()
    assert status == 1
    assert "2 assignment(s) ready: 1 fetched with 2 new image(s), 1 with a problem" in out
    assert f"problem: assignment {unknown} (system id SYS-404): no listing has system id" in err
    assert [p.assignment_id for p in unresolved_problems(cli_env)] == [unknown]
    assert TOKEN not in out + err

    portal.stop()
    assert main(["photos", "--problems"]) == 0
    listed = capsys.readouterr().out
    assert f"assignment {unknown}  system id SYS-404  listing -: no listing has" in listed
    assert "1 unresolved photo problem(s)" in listed
    portal.start()
    good_again = portal.create_assignment("SYS-1")
    portal.upload_image(good_again, image_bytes())
    portal.set_status(good_again, 1)
    monkeypatch.setenv("SYNDICATION_PHOTO_PORTAL_URL", portal.url)

    portal.delete_assignment(unknown)
    assert main(["photos", "--no-progress"]) == 0
    assert "1 assignment(s) ready: 1 fetched with 1 new image(s)" in capsys.readouterr().out
    cli_env.dispose()


def test_the_photos_command_without_a_portal_is_a_clear_error(
    cli_env: Engine,
    portal: PortalStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SYNDICATION_PHOTO_PORTAL_TOKEN")
    assert main(["photos"]) == 2
    assert "error: SYNDICATION_PHOTO_PORTAL_TOKEN is not set" in capsys.readouterr().err

    monkeypatch.setenv("SYNDICATION_PHOTO_PORTAL_TOKEN", TOKEN)
    portal.stop()
    assert main(["photos", "--no-progress"]) == 1
    assert "error: the photo portal cannot be reached" in capsys.readouterr().err
    cli_env.dispose()
