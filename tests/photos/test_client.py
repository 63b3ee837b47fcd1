"""The portal client over real HTTP: retries, timeouts, size cap, errors, no token in logs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from photo_helpers import TOKEN, add_listing, image_bytes
from sqlalchemy import Engine

from adapters.photo_portal import ImageTooLarge, PhotoPortalClient
from adapters.photo_portal import _assignment as parse_assignment
from adapters.portal_standin import PortalStandIn
from adapters.retry import RetryPolicy
from syndication.errors import ConfigurationError, PermanentError, TransientError
from syndication.logs import configure
from syndication.photos import PhotoIntake
from syndication.settings import Settings


def tries(n: int) -> RetryPolicy:
    """The client's usual schedule, with at most ``n`` calls."""
    return RetryPolicy.standard(max_attempts=n, initial_wait=0.5, max_wait=10, jitter=0.5)


def recording_client(
    portal: PortalStandIn, **kwargs: object
) -> tuple[PhotoPortalClient, list[float]]:
    waits: list[float] = []
    client = PhotoPortalClient(portal.url, TOKEN, sleep=waits.append, **kwargs)  # type: ignore[arg-type]
    return client, waits


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_with_backoff_then_succeeds(portal: PortalStandIn, status: int) -> None:
    portal.fail_requests(times=2, status=status)
    client, waits = recording_client(portal)

    assert client.ready_assignments() == []
    assert portal.requests["GET /api/assignments"] == 3
    assert len(waits) == 2 and waits[0] <= waits[1]


def test_5xx_that_persists_is_a_transient_error(portal: PortalStandIn) -> None:
    portal.fail_requests(times=100, status=503)
    client, waits = recording_client(portal, policy=tries(3))

    with pytest.raises(TransientError, match="answered 503"):
        client.ready_assignments()
    assert portal.requests["GET /api/assignments"] == 3 and len(waits) == 2


def test_429_waits_as_long_as_retry_after_says(portal: PortalStandIn) -> None:
    portal.fail_requests(times=1, status=429)
    client, waits = recording_client(portal)

    client.ready_assignments()

    assert waits == [7.0]


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_other_4xx_are_permanent_and_not_retried(portal: PortalStandIn, status: int) -> None:
    portal.fail_requests(times=100, status=status)
    client, waits = recording_client(portal)

    with pytest.raises(PermanentError, match=f"answered {status}") as caught:
        client.ready_assignments()
    assert not isinstance(caught.value, TransientError)
    assert portal.requests["GET /api/assignments"] == 1 and waits == []


def test_a_slow_portal_times_out_as_a_transient_error(portal: PortalStandIn) -> None:
    portal.slow(0.6)
    client, waits = recording_client(portal, timeout=(2.0, 0.2), policy=tries(2))

    with pytest.raises(TransientError, match="timed out"):
        client.ready_assignments()
    assert len(waits) == 1


def test_a_connection_refused_is_transient(portal: PortalStandIn) -> None:
    url = portal.url
    portal.stop()
    client = PhotoPortalClient(url, TOKEN, sleep=lambda _s: None, policy=tries(2))

    with pytest.raises(TransientError, match="ConnectionError"):
        client.ready_assignments()


def test_a_request_error_other_than_timeout_or_connection_is_permanent(
    portal: PortalStandIn,
) -> None:
    """requests' ``InvalidHeader`` (a token with a line break) is what
    :func:`adapters.http.request_error` makes of it for the marketplaces too:
    permanent, not retried, and without the header's value."""
    client, waits = recording_client(portal)
    client._session.headers["Authorization"] = f"Bearer {TOKEN}\nX-Injected: 1"

    with pytest.raises(PermanentError, match="failed: InvalidHeader") as caught:
        client.ready_assignments()
    assert not isinstance(caught.value, TransientError)
    assert TOKEN not in str(caught.value)
    assert waits == [] and portal.requests["GET /api/assignments"] == 0


def test_the_download_is_cut_off_at_the_cap_without_reading_it_whole(portal: PortalStandIn) -> None:
    assignment = portal.create_assignment("SYS-1")
    portal.upload_image(assignment, b"\xff" * 2_000_000)
    portal.set_status(assignment, 1)
    portal.omit_content_length()
    client, _ = recording_client(portal, max_image_bytes=200_000)
    (image,) = client.assignment(assignment).images
    out = io.BytesIO()

    with pytest.raises(ImageTooLarge):
        client.download(image, out)
    assert len(out.getvalue()) <= 200_000


def test_a_broken_off_download_is_retried_from_the_start(portal: PortalStandIn) -> None:
    content = image_bytes(size=(600, 400))
    assignment = portal.create_assignment("SYS-1")
    portal.upload_image(assignment, content)
    portal.set_status(assignment, 1)
    portal.cut_downloads(after_bytes=1000, times=2)
    client, waits = recording_client(portal)
    (image,) = client.assignment(assignment).images
    out = io.BytesIO()

    assert client.download(image, out) == len(content)
    assert out.getvalue() == content and len(waits) == 2


def test_settings_name_the_portal_and_token() -> None:
    with pytest.raises(ConfigurationError, match="SYNDICATION_PHOTO_PORTAL_URL"):
        PhotoPortalClient.from_settings(Settings())
    with pytest.raises(ConfigurationError, match="SYNDICATION_PHOTO_PORTAL_TOKEN"):
        PhotoPortalClient.from_settings(
            Settings.from_env({"SYNDICATION_PHOTO_PORTAL_URL": "http://127.0.0.1:9"})
        )
    client = PhotoPortalClient.from_settings(
        Settings.from_env(
            {
                "SYNDICATION_PHOTO_PORTAL_URL": "http://p.example/",
                "SYNDICATION_PHOTO_PORTAL_TOKEN": TOKEN,
            }
        )
    )
    assert TOKEN not in repr(client) and client.base_url == "http://p.example"


def test_no_token_in_logs_or_problems_and_logs_name_the_assignment(
    sqlite_engine: Engine, portal: PortalStandIn, client: PhotoPortalClient, tmp_path: Path
) -> None:
    stream = io.StringIO()
    configure("DEBUG", "json", stream=stream)
    try:
        add_listing(sqlite_engine, "OBJ1", "SYS-1")
        good = portal.create_assignment("SYS-1")
        portal.upload_image(good, image_bytes())
        portal.set_status(good, 1)
        unknown = portal.create_assignment("SYS-NONE")
        portal.upload_image(unknown, image_bytes())
        portal.set_status(unknown, 1)
        portal.fail_requests(times=2, status=503)
        intake = PhotoIntake(sqlite_engine, client, tmp_path / "media")
        report = intake.pull()
        with pytest.raises(PermanentError) as refused:
            PhotoPortalClient(portal.url, "wrong-" + TOKEN, policy=tries(1)).ready_assignments()
    finally:
        structlog.reset_defaults()

    output = stream.getvalue()
    assert TOKEN not in output
    assert TOKEN not in str(refused.value)
    assert all(TOKEN not in (r.message or "") for r in report.results)
    events = [json.loads(line) for line in output.splitlines()]
    fetched = next(e for e in events if e["event"] == "photo_assignment_fetched")
    assert (fetched["assignment_id"], fetched["system_id"], fetched["listing_id"]) == (
        good,
        "SYS-1",
        "OBJ1",
    )
    problem = next(e for e in events if e["event"] == "photo_assignment_problem")
    assert (problem["assignment_id"], problem["system_id"]) == (unknown, "SYS-NONE")
    assert any(e["event"] == "photo_portal_busy" and e["status"] == 503 for e in events)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
ASSIGNMENTISH = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON,
        "system_id": JSON,
        "status": JSON,
        "images": st.lists(
            st.fixed_dictionaries({}, optional={"id": JSON, "order": JSON, "size": JSON}),
            max_size=3,
        )
        | JSON,
    },
)


@given(ASSIGNMENTISH | JSON)
def test_a_malformed_portal_answer_is_a_permanent_error(data: object) -> None:
    try:
        assignment = parse_assignment(data)
    except PermanentError:
        return
    assert isinstance(assignment.status, int)
    assert [i.order for i in assignment.images] == sorted(i.order for i in assignment.images)
