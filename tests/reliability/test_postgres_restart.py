"""The PostgreSQL store restarted mid-run: every pair still settles, nothing twice.

The store is a PostgreSQL server of the test's own (``own_postgres.py``); one
``syndication worker`` process and the sandbox marketplaces do a transfer.
When a quarter of the pairs are delivered the server is stopped (``pg_ctl
stop -m fast``: every connection is cut), left down for two seconds and
started again. Jobs, publication checks and the relay meet a dead
connection; their messages are retried (the retry goes to Redis, which is up)
and the relay tries again. Then every listing × marketplace must be
``published``, created once per marketplace, with a history without gaps,
and the output says how long the slowest pair took to settle after the
restart.

The long run (``SYNDICATION_FAULT_LISTINGS=2000 … -m slow``) does the same
with 500 listings and the server down for 10 s.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_cluster import LONG_RUN, MARKETPLACES, Cluster, Policy, cluster_of, marks
from own_postgres import OwnPostgres

from syndication.store.models import utcnow

pytestmark = marks()

LISTINGS = 500 if LONG_RUN else 40
DOWN_SECONDS = 10.0 if LONG_RUN else 2.0
POLICY = Policy(confirm_delay_ms=300, http_attempts=2, max_retries=10, min_backoff_ms=300,
                marketplace_concurrency=2)
"""Ten tries from 0.3 s doubling: far longer than the server is down. Two deliveries at
once per marketplace, each answered after :data:`LATENCY_MS`, so the run lasts seconds
and the restart lands in its middle (one concurrent worker would otherwise send every
pair at once and be done before the server stops)."""
LATENCY_MS = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def delivered(cluster: Cluster) -> int:
    return sum(1 for r in cluster.statuses().values() if r.state in ("sent", "published"))


@pytest.fixture
def postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres(free_port())
    server.start()
    yield server
    server.close()


@pytest.fixture
def deployment(tmp_path: Path, own_redis: Any, postgres: OwnPostgres) -> Iterator[Cluster]:
    yield from cluster_of(tmp_path, own_redis.url, POLICY, database_url=postgres.url,
                          publish_delay=0.5, latency_ms=LATENCY_MS)


def test_a_postgres_restart_mid_run_strands_nothing(
    deployment: Cluster, postgres: OwnPostgres
) -> None:
    cluster = deployment
    ids = cluster.ingest(LISTINGS)
    pairs = len(ids) * len(MARKETPLACES)
    cluster.start_worker("syndication")
    request = cluster.transfer()
    deadline = time.monotonic() + 120
    while delivered(cluster) < pairs // 4:
        assert time.monotonic() < deadline, "no progress before the restart"
        time.sleep(0.1)
    cluster.engine.dispose()
    postgres.stop()
    time.sleep(DOWN_SECONDS)
    postgres.start()
    healed = utcnow()
    assert cluster.outcome(request).done < pairs, "all done before the restart: nothing proven"

    cluster.assert_every_pair_published_once(request, ids, 120.0 + pairs / 5,
                                             after="the restart")
    print(f"\npostgres down {DOWN_SECONDS:.0f} s mid-run: {pairs} pairs published; the slowest "
          f"settled {cluster.settled_after(healed):.1f} s after the restart")
