"""Fixtures of the final-price tests: a recording Hemnet transport and a runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
from fp_support import RecordingHemnet
from sqlalchemy import Engine

from adapters.base import Transport
from syndication.runtime import Runtime
from syndication.settings import Settings


@pytest.fixture
def hemnet() -> RecordingHemnet:
    return RecordingHemnet()


@pytest.fixture
def make_runtime(tmp_path: Path):  # type: ignore[no-untyped-def]
    def build(engine: Engine, transport: Transport) -> Runtime:
        settings = Settings(database_url=str(engine.url), outbox=tmp_path / "outbox")
        return Runtime(settings=settings, engine=engine, transports={"hemnet": transport},
                       sleep=lambda _s: None)

    return build
