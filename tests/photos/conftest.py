"""Fixtures of the photo-intake tests: the portal stand-in on loopback, a client, the intake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from photo_helpers import TOKEN, Clock
from sqlalchemy import Engine

from adapters.photo_portal import PhotoPortalClient
from adapters.portal_standin import PortalStandIn
from syndication.photos import PhotoIntake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def portal(clock: Clock) -> Iterator[PortalStandIn]:
    with PortalStandIn(token=TOKEN, clock=clock) as standin:
        yield standin


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def client(portal: PortalStandIn) -> Iterator[PhotoPortalClient]:
    """A client whose retries wait no time, so failing tests stay fast."""
    with PhotoPortalClient(portal.url, TOKEN, sleep=lambda _s: None, timeout=(2, 5)) as c:
        yield c


@pytest.fixture
def make_intake(
    client: PhotoPortalClient, media_dir: Path, clock: Clock
) -> Callable[..., PhotoIntake]:
    def make(engine: Engine, **kwargs: object) -> PhotoIntake:
        return PhotoIntake(engine, client, media_dir, clock=clock, **kwargs)  # type: ignore[arg-type]

    return make
