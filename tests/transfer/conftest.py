"""Fixtures of the transfer tests: an in-process queue on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine
from transfer_helpers import QUEUE_SETTINGS, Queue

from syndication.broker import in_process_worker


@pytest.fixture
def queue(sqlite_engine: Engine) -> Iterator[Queue]:
    q = Queue(sqlite_engine, replace(QUEUE_SETTINGS))
    with in_process_worker(q.broker, threads=4):
        yield q


@pytest.fixture
def pg_queue(postgres_engine: Engine) -> Iterator[Queue]:
    q = Queue(postgres_engine, replace(QUEUE_SETTINGS))
    with in_process_worker(q.broker, threads=4):
        yield q
