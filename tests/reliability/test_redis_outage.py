"""Redis stopped for a while — during the fan-out, during deliveries, during the
publication checks — and afterwards every pair settles with no one re-running anything.

Each case runs a whole deployment (``fault_cluster.py``): a SQLite store, a
Redis server with append-only persistence, one ``syndication worker`` process
and the sandbox marketplaces. Redis is stopped at the phase under test and
started again after the outage. In the deliveries case the marketplaces also
fail 30 % of their calls from the start until Redis is back, so retries are
being scheduled while Redis is away (and the jobs cannot all be done before
it goes). Then:

* every listing × marketplace ends ``published`` (the sandbox publishes after
  a delay, so every ``sent`` needs its publication check to have survived);
* each listing was created exactly once on each marketplace;
* every pair's history accounts for its row (no gaps);
* the output says how long the slowest pair took to settle after Redis came
  back.

Short form (CI, default run): outages of 1 s and 5 s with 40 listings. Long
form (marked ``slow``, part of the long run of every fault test): 1, 5, 30 and
120 s with 500 listings::

    SYNDICATION_FAULT_LISTINGS=2000 python -m pytest tests/reliability -m slow
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fault_cluster import LONG_RUN, MARKETPLACES, Cluster, Policy, cluster_of

from syndication.store.models import utcnow

SHORT_LISTINGS = 40
LONG_LISTINGS = 500
POLICY = Policy(confirm_delay_ms=300, fan_out_lease_ms=3_000, http_attempts=1, max_retries=8,
                min_backoff_ms=300)
"""One HTTP attempt per try: a marketplace's 503 becomes a dramatiq retry at once, so
retries are being scheduled while Redis is away."""
PUBLISH_DELAY = 3.0
"""Seconds before the sandbox shows a listing published: checks are still polling when
Redis goes away in the ``checks`` phase, however fast the deliveries went."""

OUTAGES = (1, 5, 30, 120) if LONG_RUN else (1, 5)
"""The long outages belong to the long run (``SYNDICATION_FAULT_LISTINGS`` over 500)."""
CASES = [
    pytest.param(phase, seconds, marks=[pytest.mark.redis, *(
        [pytest.mark.slow, pytest.mark.timeout(1800)] if LONG_RUN else
        [pytest.mark.timeout(240)])], id=f"{phase}-{seconds}s")
    for seconds in OUTAGES
    for phase in ("fan_out", "deliveries", "checks")
]


@pytest.fixture
def deployment(tmp_path: Path, own_redis: Any) -> Iterator[Cluster]:
    yield from cluster_of(tmp_path, own_redis.url, POLICY, publish_delay=PUBLISH_DELAY)


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def delivered(cluster: Cluster) -> int:
    return sum(1 for row in cluster.statuses().values() if row.state in ("sent", "published"))


def outage(own_redis: Any, seconds: float) -> datetime:
    """Stop Redis for ``seconds``; the time it answered again."""
    own_redis.stop()
    time.sleep(seconds)
    own_redis.start()
    return utcnow()


@pytest.mark.parametrize(("phase", "seconds"), CASES)
def test_a_redis_outage_strands_nothing(
    deployment: Cluster, own_redis: Any, phase: str, seconds: int
) -> None:
    cluster = deployment
    ids = cluster.ingest(LONG_LISTINGS if LONG_RUN else SHORT_LISTINGS)
    pairs = len(ids) * len(MARKETPLACES)
    cluster.start_worker("syndication")

    if phase == "fan_out":
        own_redis.stop()
        process = cluster.start_transfer()
        time.sleep(seconds)
        own_redis.start()
        healed = utcnow()
        request = cluster.finish_transfer(process)
    else:
        if phase == "deliveries":
            for n, name in enumerate(MARKETPLACES):
                cluster.sandbox[name].faults.fail_fraction(0.3, seed=n, statuses=(503,))
        request = cluster.finish_transfer(cluster.start_transfer())
        if phase == "deliveries":
            wait_until(lambda: delivered(cluster) >= pairs // 4, 120, "a quarter delivered")
            assert delivered(cluster) < pairs, "all delivered before the outage: nothing proven"
            own_redis.stop()
            time.sleep(seconds)
            for name in MARKETPLACES:
                cluster.sandbox[name].faults.clear()
            own_redis.start()
            healed = utcnow()
        else:
            wait_until(lambda: cluster.outcome(request).finished, 120, "every pair delivered")
            sent = sum(1 for row in cluster.statuses().values() if row.state == "sent")
            assert sent, "every check was over before the outage: nothing proven"
            healed = outage(own_redis, seconds)

    cluster.assert_every_pair_published_once(request, ids, 120.0 + pairs / 5,
                                             after="the outage")
    print(f"\nredis down {seconds} s during {phase}: {pairs} pairs published; the slowest "
          f"settled {cluster.settled_after(healed):.1f} s after Redis was back")
