"""R11 "where support can see it": an office's status shows its unresolved photo problems.

The problem is made the way it happens: a photographer names a system id no
listing has, and a real pull through the portal stand-in on loopback records
it. Support then finds it in ``syndication status --office`` and on the
office page of the web view, with what to do; it goes once the listing exists
and the next pull fetches the assignment.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session
from web_server import FAST, PASSWORD, english, login, serve

from adapters.photo_portal import PhotoPortalClient
from adapters.portal_standin import PortalStandIn
from syndication.cli import main
from syndication.passwords import set_password
from syndication.photos import PhotoIntake
from syndication.store.db import session_scope
from syndication.store.models import ListingRow, PhotoProblemRow
from syndication.support import UNMATCHED_ADVICE, office_photo_problems

TOKEN = "portal-token-for-support-tests"


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), "teal").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def portal() -> Iterator[PortalStandIn]:
    with PortalStandIn(token=TOKEN) as standin:
        yield standin


@pytest.fixture
def typo(seeded: Engine, portal: PortalStandIn, tmp_path: Path) -> Iterator[PhotoIntake]:
    """A ready assignment naming system id SYS-TYPO, pulled once; and a problem of
    the other office's own listing."""
    assignment = portal.create_assignment("SYS-TYPO", "Villa med fel system-id")
    portal.upload_image(assignment, jpeg(), title="Fasad", tag="exterior")
    portal.set_status(assignment, 1)
    with session_scope(seeded) as session:
        session.add(PhotoProblemRow(assignment_id="A-OTHER", listing_id="OTHER",
                                    message="image 1 is not a JPEG"))
    with PhotoPortalClient(portal.url, TOKEN, sleep=lambda _s: None, timeout=(2, 5)) as client:
        intake = PhotoIntake(seeded, client, tmp_path / "media")
        assert not intake.pull().ok
        yield intake


def problems_of(engine: Engine, office_id: str) -> list[dict]:
    with Session(engine) as session:
        return office_photo_problems(session, office_id)


def test_office_problems_are_its_own_and_the_unmatched(seeded: Engine, typo: PhotoIntake) -> None:
    mine = problems_of(seeded, "OFF1")
    assert [(p["assignment_id"], p["system_id"], p["unmatched"]) for p in mine] == [
        ("A-9", "SYS-FAIL", False), ("A1", "SYS-TYPO", True)
    ]
    unmatched = mine[1]
    assert unmatched["listing_id"] is None and unmatched["advice"] == UNMATCHED_ADVICE
    assert "no listing has system id 'SYS-TYPO'" in unmatched["message"]
    assert "check the system id in the photo portal's assignment" in UNMATCHED_ADVICE.lower()
    assert "create the listing" in UNMATCHED_ADVICE
    assert "fetched again at the next photo round" in UNMATCHED_ADVICE
    assert mine[0]["advice"] is None
    other = problems_of(seeded, "OFF2")
    assert [p["assignment_id"] for p in other] == ["A-OTHER", "A1"]


def test_status_office_shows_them_with_what_to_do(
    seeded: Engine, typo: PhotoIntake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = str(seeded.url)
    with Session(seeded) as session:
        set_password(session, "anna", PASSWORD, old_password=None, hasher=FAST)
        session.commit()
    monkeypatch.setattr("syndication.auth.default_hasher", lambda: FAST)
    for name, value in {"SYNDICATION_DATABASE_URL": url, "SYNDICATION_PASSWORD": PASSWORD,
                        "SYNDICATION_OUTBOX": str(tmp_path / "outbox")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SYNDICATION_MARKETPLACES", raising=False)
    capsys.readouterr()

    assert main(["status", "--office", "OFF1", "--user", "anna", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [p["assignment_id"] for p in document["photo_problems"]] == ["A-9", "A1"]
    assert document["photo_problems"][1]["advice"] == UNMATCHED_ADVICE

    assert main(["status", "--office", "OFF1", "--user", "anna", "--state", "failed"]) == 0
    out = capsys.readouterr().out
    assert "Photo problems:" in out
    line = next(line for line in out.splitlines() if "assignment A1 " in line)
    assert "system id SYS-TYPO" in line and "no listing" in line
    assert "what to do: No listing has this system id. Check the system id" in out


def test_office_page_shows_them_and_they_go_when_mended(
    seeded: Engine, typo: PhotoIntake
) -> None:
    with serve(seeded) as served:
        http, _ = login(served, http=english())
        page = http.get(served.url("/offices/OFF1"), timeout=10).text
        assert 'id="photo-problems"' in page
        assert "SYS-TYPO" in page and "A1" in page
        assert "fetched again at the next photo round" in page
        assert "photo portal&#39;s assignment" in page
        assert re.findall(r'class="photo-problem" data-assignment="([^"]+)"', page) == [
            "A-9", "A1"]

        with session_scope(seeded) as session:
            session.add(ListingRow(id="TYPO", office_id="OFF1", category="villa",
                                   state="for_sale", marketplaces=["hemnet"],
                                   system_id="SYS-TYPO"))
        assert typo.pull().ok
        page = http.get(served.url("/offices/OFF1"), timeout=10).text
        assert "SYS-TYPO" not in page and "A-9" in page
        assert requests.get(served.url("/offices/OFF1"), timeout=10,
                            allow_redirects=False).status_code == 302


def test_office_problems_query_on_both_databases(seeded_any: Engine) -> None:
    with session_scope(seeded_any) as session:
        session.add(PhotoProblemRow(assignment_id="A-X", system_id="SYS-NONE",
                                    message="no listing has system id 'SYS-NONE'"))
        session.add(PhotoProblemRow(assignment_id="A-BAD", system_id=None,
                                    message="the assignment's system id '' is not valid"))
    found = [(p["assignment_id"], p["unmatched"]) for p in problems_of(seeded_any, "OFF1")]
    assert found == [("A-9", False), ("A-X", True), ("A-BAD", True)]
