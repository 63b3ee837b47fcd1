"""The portal stand-in keeps the guide's rules (seed 001), in Python and over HTTP."""

from __future__ import annotations

import pytest
import requests
from photo_helpers import TOKEN, Clock, image_bytes

from adapters.portal_standin import PortalRuleError, PortalStandIn


def test_an_assignment_is_freely_editable_before_it_is_ready(portal: PortalStandIn) -> None:
    assignment = portal.create_assignment("SYS-1", "Villa Storgatan")
    first = portal.upload_image(assignment, image_bytes(), title="Fasad", tag="fasade")
    second = portal.upload_image(assignment, image_bytes(color="red"), title="Kök")

    portal.rename(assignment, "Villa Storgatan 1")
    portal.edit_image(assignment, second, title="Kök mot gården", tag="kok", order=0)
    portal.delete_image(assignment, first)

    state = portal.assignment(assignment)
    assert (state.name, state.status, state.system_id) == ("Villa Storgatan 1", 0, "SYS-1")
    assert [(i.title, i.tag, i.order) for i in state.images] == [("Kök mot gården", "kok", 0)]


@pytest.mark.parametrize(
    "change",
    [
        lambda p, a, i: p.upload_image(a, image_bytes()),
        lambda p, a, i: p.delete_image(a, i),
        lambda p, a, i: p.edit_image(a, i, title="Ny"),
        lambda p, a, i: p.rename(a, "Nytt namn"),
        lambda p, a, i: p.set_status(a, 0),
    ],
    ids=["upload", "delete image", "edit image", "rename", "status back to 0"],
)
def test_a_ready_assignment_can_only_be_deleted(portal: PortalStandIn, change) -> None:  # type: ignore[no-untyped-def]
    assignment = portal.create_assignment("SYS-1")
    image = portal.upload_image(assignment, image_bytes())
    portal.set_status(assignment, 1)

    with pytest.raises(PortalRuleError):
        change(portal, assignment, image)
    assert len(portal.assignment(assignment).images) == 1

    portal.delete_assignment(assignment)
    with pytest.raises(KeyError):
        portal.assignment(assignment)


def test_a_transferred_assignment_cannot_be_deleted_but_takes_more_images(
    portal: PortalStandIn,
) -> None:
    assignment = portal.create_assignment("SYS-1")
    portal.upload_image(assignment, image_bytes())
    portal.set_status(assignment, 1)
    portal.mark_fetched(assignment)

    with pytest.raises(PortalRuleError, match="cannot be deleted"):
        portal.delete_assignment(assignment)
    with pytest.raises(PortalRuleError):
        portal.set_status(assignment, 2)

    portal.upload_image(assignment, image_bytes(color="red"), title="Ny")
    portal.set_status(assignment, 1)

    assert portal.assignment(assignment).status == 1
    assert [a.id for a in portal.ready()] == [assignment]


def test_images_expire_30_days_after_transfer_and_the_history_stays(
    portal: PortalStandIn, clock: Clock
) -> None:
    assignment = portal.create_assignment("SYS-1")
    old = portal.upload_image(assignment, image_bytes())
    portal.set_status(assignment, 1)
    portal.mark_fetched(assignment)
    clock.advance(days=20)
    portal.upload_image(assignment, image_bytes(color="red"))
    portal.set_status(assignment, 1)
    portal.mark_fetched(assignment)

    clock.advance(days=9, hours=23)
    assert len(portal.assignment(assignment).images) == 2

    clock.advance(hours=1)
    state = portal.assignment(assignment)
    assert [i.id for i in state.images] != [old] and len(state.images) == 1
    assert state.status == 2
    assert {"event": "image deleted automatically", "detail": old} in [
        {k: e[k] for k in ("event", "detail")} for e in state.history
    ]

    clock.advance(days=20)
    state = portal.assignment(assignment)
    assert state.images == [] and state.system_id == "SYS-1"
    events = [e["event"] for e in state.history]
    assert events.count("image uploaded") == 2 and events.count("image deleted automatically") == 2


def test_the_api_lists_ready_assignments_and_moves_them_to_2(portal: PortalStandIn) -> None:
    editing = portal.create_assignment("SYS-0")
    ready = portal.create_assignment("SYS-1")
    portal.upload_image(ready, image_bytes(), title="Fasad", tag="fasade", order=2)
    portal.upload_image(ready, image_bytes(), title="Hall", order=1)
    portal.set_status(ready, 1)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    listed = requests.get(f"{portal.url}/api/assignments?status=1", headers=auth, timeout=5).json()
    detail = requests.get(f"{portal.url}/api/assignments/{ready}", headers=auth, timeout=5).json()
    too_early = requests.put(
        f"{portal.url}/api/assignments/{editing}/status",
        json={"status": 2},
        headers=auth,
        timeout=5,
    )
    done = requests.put(
        f"{portal.url}/api/assignments/{ready}/status", json={"status": 2}, headers=auth, timeout=5
    )

    assert [a["id"] for a in listed["assignments"]] == [ready]
    assert [(i["title"], i["order"]) for i in detail["images"]] == [("Hall", 1), ("Fasad", 2)]
    assert detail["status_text"] == "Klar for overføring"
    assert too_early.status_code == 409
    assert done.json() == {"id": ready, "status": 2}
    assert portal.assignment(ready).status == 2


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_the_api_demands_the_bearer_token(portal: PortalStandIn, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    answer = requests.get(f"{portal.url}/api/assignments?status=1", headers=headers, timeout=5)
    assert answer.status_code == 401


def test_unknown_things_are_404(portal: PortalStandIn) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/api/assignments/A999", "/api/images/I999/content", "/api/nothing"):
        assert requests.get(portal.url + path, headers=auth, timeout=5).status_code == 404
