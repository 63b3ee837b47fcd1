"""The photo module against the portal stand-in over HTTP and a real store (R11)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from photo_helpers import Clock, add_listing, image_bytes, portal_images, stored_files
from sqlalchemy import Engine, select

from adapters.portal_standin import PortalStandIn
from syndication.photos import ImageLimits, PhotoIntake, unresolved_problems
from syndication.store.db import session_scope
from syndication.store.models import PhotoIntakeRow, PhotoProblemRow

MakeIntake = Callable[..., PhotoIntake]


def ready_assignment(portal: PortalStandIn, system_id: str, images: list[dict]) -> str:
    assignment = portal.create_assignment(system_id, "Fotografering")
    for image in images:
        portal.upload_image(assignment, **image)
    portal.set_status(assignment, 1)
    return assignment


def test_ready_assignment_is_attached_in_portal_order_then_set_to_2(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake, media_dir: Path, clock: Clock
) -> None:
    add_listing(engine, "OBJ1", "SYS-100", desktop_images=2)
    kitchen, facade, garden = (image_bytes(color=c) for c in ("red", "green", "blue"))
    assignment = ready_assignment(
        portal,
        "SYS-100",
        [
            {"content": kitchen, "title": "Kök", "tag": "kok", "order": 3},
            {"content": facade, "title": "Fasad mot söder", "tag": "fasade", "order": 1},
            {"content": garden, "title": "Trädgård", "tag": "hage", "order": 2},
        ],
    )

    report = make_intake(engine).pull()

    assert report.ok and report.images_added == 3
    assert [(r.assignment_id, r.listing_id, r.outcome) for r in report.results] == [
        (assignment, "OBJ1", "fetched")
    ]
    assert portal.assignment(assignment).status == 2
    rows = portal_images(engine, "OBJ1")
    assert [(r.caption, r.tag) for r in rows] == [
        ("Fasad mot söder", "fasade"),
        ("Trädgård", "hage"),
        ("Kök", "kok"),
    ]
    assert [r.position for r in rows] == [2, 3, 4]
    for row, content in zip(rows, (facade, garden, kitchen), strict=True):
        digest = hashlib.sha256(content).hexdigest()
        assert row.sha256 == digest and row.content_type == "image/jpeg"
        assert row.media_path == f"{digest[:2]}/{digest}.jpg"
        assert (media_dir / row.media_path).read_bytes() == content
        assert row.url == (media_dir / row.media_path).resolve().as_uri()
    with session_scope(engine) as session:
        intake = session.get(PhotoIntakeRow, assignment)
        assert intake is not None
        assert (intake.system_id, intake.listing_id) == ("SYS-100", "OBJ1")
        assert intake.images_fetched == 3
        assert intake.last_fetched_at == clock.now
    assert not (media_dir / ".incoming").exists() or not any((media_dir / ".incoming").iterdir())


def test_media_base_url_gives_public_addresses(
    sqlite_engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    ready_assignment(portal, "SYS-1", [{"content": image_bytes("PNG"), "title": "Plan"}])

    make_intake(sqlite_engine, media_base_url="https://media.example/photos/").pull()

    (row,) = portal_images(sqlite_engine, "OBJ1")
    assert row.content_type == "image/png"
    assert row.url == f"https://media.example/photos/{row.media_path}"


def test_second_round_adds_only_the_new_images(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(engine, "OBJ1", "SYS-100", desktop_images=0)
    assignment = ready_assignment(
        portal, "SYS-100", [{"content": image_bytes(color="red"), "title": "Hall", "order": 1}]
    )
    intake = make_intake(engine)
    intake.pull()
    assert portal.assignment(assignment).status == 2

    portal.upload_image(assignment, image_bytes(color="navy"), title="Vind", tag="loft", order=2)
    portal.upload_image(assignment, image_bytes(color="olive"), title="Bod", order=3)
    portal.set_status(assignment, 1)
    downloads_before = sum(n for k, n in portal.requests.items() if k.endswith("/content"))

    report = intake.pull()

    assert report.images_added == 2 and report.ok
    assert portal.assignment(assignment).status == 2
    assert [(r.caption, r.tag, r.position) for r in portal_images(engine, "OBJ1")] == [
        ("Hall", None, 0),
        ("Vind", "loft", 1),
        ("Bod", None, 2),
    ]
    downloads = sum(n for k, n in portal.requests.items() if k.endswith("/content"))
    assert downloads - downloads_before == 2
    with session_scope(engine) as session:
        intake_row = session.get(PhotoIntakeRow, assignment)
        assert intake_row is not None and intake_row.images_fetched == 3

    assert intake.pull().results == []


def test_unknown_system_id_stays_at_1_with_a_problem_until_the_listing_exists(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    assignment = ready_assignment(portal, "SYS-TYPO", [{"content": image_bytes(), "title": "x"}])
    intake = make_intake(engine)

    first = intake.pull()
    second = intake.pull()

    assert not first.ok and not second.ok
    assert portal.assignment(assignment).status == 1
    problems = unresolved_problems(engine)
    assert len(problems) == 1, "the same problem is recorded once, not every round"
    assert problems[0].assignment_id == assignment and problems[0].system_id == "SYS-TYPO"
    assert problems[0].listing_id is None
    assert "no listing has system id 'SYS-TYPO'" in problems[0].message

    add_listing(engine, "OBJ9", "SYS-TYPO")
    third = intake.pull()

    assert third.ok and third.images_added == 1
    assert portal.assignment(assignment).status == 2
    assert unresolved_problems(engine) == []
    with session_scope(engine) as session:
        (row,) = session.scalars(select(PhotoProblemRow))
        assert row.resolved_at is not None


def test_a_system_id_naming_two_listings_is_a_problem(
    sqlite_engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-DUP")
    add_listing(sqlite_engine, "OBJ2", "SYS-DUP")
    assignment = ready_assignment(portal, "SYS-DUP", [{"content": image_bytes()}])

    report = make_intake(sqlite_engine).pull()

    assert "several listings: OBJ1, OBJ2" in (report.problems[0].message or "")
    assert portal.assignment(assignment).status == 1
    assert portal_images(sqlite_engine, "OBJ1") == portal_images(sqlite_engine, "OBJ2") == []


REJECTED = [
    ("not an image", b"%PDF-1.4 this is a text file, not a photo", "not an image"),
    ("gif", image_bytes("GIF"), "type GIF is not taken by the marketplaces"),
    ("tiff", image_bytes("TIFF"), "type TIFF is not taken by the marketplaces"),
    ("bmp", image_bytes("BMP"), "type BMP is not taken by the marketplaces"),
    ("too small", image_bytes(size=(40, 30)), "too small: 40x30"),
    ("truncated jpeg", image_bytes(size=(400, 300))[:-900], "damaged or truncated"),
    ("empty", b"", "the file is empty"),
]


@pytest.mark.parametrize(
    ("content", "reason"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED]
)
def test_bad_files_are_rejected_with_a_reason_and_nothing_is_attached(
    sqlite_engine: Engine,
    portal: PortalStandIn,
    make_intake: MakeIntake,
    media_dir: Path,
    content: bytes,
    reason: str,
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    assignment = ready_assignment(
        portal,
        "SYS-1",
        [
            {"content": image_bytes(color="red"), "title": "Good one", "order": 1},
            {"content": content, "title": "Bad one", "order": 2},
        ],
    )

    report = make_intake(sqlite_engine).pull()

    assert not report.ok
    (problem,) = unresolved_problems(sqlite_engine)
    assert reason in problem.message and "Bad one" in problem.message
    assert problem.listing_id == "OBJ1" and problem.assignment_id == assignment
    assert portal_images(sqlite_engine, "OBJ1") == []
    assert portal.assignment(assignment).status == 1
    assert stored_files(media_dir) == []


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "streamed"])
def test_a_file_over_the_size_cap_is_cut_off_and_rejected(
    sqlite_engine: Engine,
    portal: PortalStandIn,
    make_intake: MakeIntake,
    media_dir: Path,
    send_length: bool,
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    big = image_bytes(size=(1600, 1200), color="white") + b"\0" * 300_000
    assignment = ready_assignment(portal, "SYS-1", [{"content": big, "title": "Huge"}])
    portal.omit_content_length(not send_length)
    intake = make_intake(sqlite_engine)
    intake.portal.max_image_bytes = 100_000

    report = intake.pull()

    assert "the file is too large" in (report.problems[0].message or "")
    assert portal.assignment(assignment).status == 1
    assert portal_images(sqlite_engine, "OBJ1") == [] and stored_files(media_dir) == []


def test_too_many_pixels_is_rejected_before_decoding(
    sqlite_engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    ready_assignment(portal, "SYS-1", [{"content": image_bytes(size=(3000, 2000))}])

    report = make_intake(sqlite_engine, limits=ImageLimits(max_pixels=1_000_000)).pull()

    assert "too many pixels: 3000x2000" in (report.problems[0].message or "")


def test_a_download_cut_in_the_middle_attaches_nothing_and_the_next_round_succeeds(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake, media_dir: Path
) -> None:
    add_listing(engine, "OBJ1", "SYS-1", desktop_images=0)
    first, second = image_bytes(size=(800, 600), color="red"), image_bytes(size=(800, 600))
    assignment = ready_assignment(
        portal, "SYS-1", [{"content": first, "order": 1}, {"content": second, "order": 2}]
    )
    second_id = portal.assignment(assignment).images[1].id
    portal.cut_downloads(after_bytes=len(second) // 2, times=100, image_id=second_id)
    intake = make_intake(engine)

    report = intake.pull()

    assert "broke off" in (report.problems[0].message or "")
    assert portal.requests[f"GET /api/images/{second_id}/content"] == 4, "retried, then gave up"
    assert portal.assignment(assignment).status == 1
    assert portal_images(engine, "OBJ1") == []
    assert stored_files(media_dir) == []
    assert len(unresolved_problems(engine)) == 1

    portal.clear_faults()
    again = intake.pull()

    assert again.ok and again.images_added == 2
    assert portal.assignment(assignment).status == 2
    assert unresolved_problems(engine) == []


def test_a_single_broken_download_is_retried_within_the_round(
    sqlite_engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    assignment = ready_assignment(portal, "SYS-1", [{"content": image_bytes(size=(800, 600))}])
    portal.cut_downloads(after_bytes=500, times=1)

    report = make_intake(sqlite_engine).pull()

    assert report.ok and report.images_added == 1
    assert portal.assignment(assignment).status == 2


def test_status_2_is_set_only_after_the_images_are_stored(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(engine, "OBJ1", "SYS-1", desktop_images=0)
    assignment = ready_assignment(portal, "SYS-1", [{"content": image_bytes(), "title": "A"}])
    portal.fail_requests(times=100, status=502, path_contains="/status")
    intake = make_intake(engine)

    report = intake.pull()

    assert not report.ok and "answered 502" in (report.problems[0].message or "")
    assert portal.assignment(assignment).status == 1
    assert len(portal_images(engine, "OBJ1")) == 1, "stored before the status call"

    portal.clear_faults()
    downloads = sum(n for k, n in portal.requests.items() if k.endswith("/content"))
    again = intake.pull()

    assert again.ok and again.images_added == 0
    assert sum(n for k, n in portal.requests.items() if k.endswith("/content")) == downloads
    assert portal.assignment(assignment).status == 2
    assert len(portal_images(engine, "OBJ1")) == 1
    assert unresolved_problems(engine) == []


def test_one_bad_assignment_does_not_stop_the_others(
    sqlite_engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    add_listing(sqlite_engine, "OBJ2", "SYS-2")
    bad = ready_assignment(portal, "SYS-1", [{"content": b"not a photo"}])
    good = ready_assignment(portal, "SYS-2", [{"content": image_bytes()}])

    report = make_intake(sqlite_engine).pull()

    assert {r.assignment_id: r.outcome for r in report.results} == {bad: "problem", good: "fetched"}
    assert portal.assignment(bad).status == 1 and portal.assignment(good).status == 2


def test_two_runs_at_once_attach_each_image_once(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    import threading

    add_listing(engine, "OBJ1", "SYS-1", desktop_images=0)
    ready_assignment(portal, "SYS-1", [{"content": image_bytes(color=c)} for c in ("red", "blue")])
    intakes = [make_intake(engine), make_intake(engine)]
    threads = [threading.Thread(target=intake.pull) for intake in intakes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    rows = portal_images(engine, "OBJ1")
    assert sorted(r.portal_image_id or "" for r in rows) == sorted(
        {r.portal_image_id or "" for r in rows}
    )
    assert len(rows) == 2


def test_an_assignment_deleted_while_pulled_is_skipped_without_a_problem(
    sqlite_engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(sqlite_engine, "OBJ1", "SYS-1")
    assignment = ready_assignment(portal, "SYS-1", [{"content": image_bytes()}])
    intake = make_intake(sqlite_engine)
    (summary,) = intake.ready()
    portal.delete_assignment(assignment)

    result = intake.pull_one(summary)

    assert result.outcome == "gone"
    assert unresolved_problems(sqlite_engine) == [] and portal_images(sqlite_engine, "OBJ1") == []


def test_hostile_titles_are_stored_clean_and_the_feeds_still_build(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    from syndication import registry
    from syndication.store.repository import load_feed_input

    add_listing(engine, "OBJ1", "SYS-1")
    title = "Kök\x00 med\nutsikt \u202e" + "å" * 5000
    ready_assignment(
        portal, "SYS-1", [{"content": image_bytes(), "title": title, "tag": "\x07kok"}]
    )

    assert make_intake(engine).pull().ok

    (row,) = portal_images(engine, "OBJ1")
    assert row.caption is not None and row.caption.startswith("Kök med utsikt")
    assert row.caption.isprintable() and len(row.caption) == 500
    assert row.tag == "kok"
    with session_scope(engine) as session:
        feed_input = load_feed_input(session, "OBJ1")
    assert feed_input is not None
    for name in registry.push_names():
        assert registry.get(name).build(feed_input)


def assert_refused_system_id(engine: Engine, portal: PortalStandIn, intake: PhotoIntake) -> None:
    (assignment,) = [a.id for a in intake.ready()]
    report = intake.pull()
    assert "not a valid system id" in (report.problems[0].message or "")
    assert [p.assignment_id for p in unresolved_problems(engine)] == [assignment]
    assert portal.assignment(assignment).status == 1


def test_a_system_id_with_a_nul_is_a_problem_not_a_crash(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    ready_assignment(portal, "SYS\x00-1", [{"content": image_bytes()}])
    assert_refused_system_id(engine, portal, make_intake(engine))


@pytest.mark.parametrize("system_id", ["x" * 65, "   ", "SYS\n1"])
def test_an_invalid_system_id_is_a_problem(
    sqlite_engine: Engine, portal: PortalStandIn, make_intake: MakeIntake, system_id: str
) -> None:
    ready_assignment(portal, system_id, [{"content": image_bytes()}])
    assert_refused_system_id(sqlite_engine, portal, make_intake(sqlite_engine))


def test_a_rejected_file_with_a_hostile_title_still_records_its_problem(
    engine: Engine, portal: PortalStandIn, make_intake: MakeIntake
) -> None:
    add_listing(engine, "OBJ1", "SYS-1")
    ready_assignment(portal, "SYS-1", [{"content": b"junk", "title": "Bad\x00one\r\n"}])

    make_intake(engine).pull()

    (problem,) = unresolved_problems(engine)
    assert "(Bad one) rejected: the file is not an image" in problem.message
