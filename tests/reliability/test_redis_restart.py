"""(b) The Redis server restarted mid-run, append-only persistence on: nothing lost or doubled.

Two worker processes transfer a batch; when about a quarter of the jobs are
done the Redis server (``--appendonly yes``) is stopped and started again on
the same port and data folder. The workers must reconnect on their own, the
queued and delayed messages must survive in the append-only file, and every
listing × marketplace must end ``sent`` or ``published`` with each listing
created exactly once on each marketplace, and the publication checks queued
before the restart must still run: every listing ends ``published``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fault_cluster import (
    DELIVERED,
    FAULT_LISTINGS,
    MARKETPLACES,
    Cluster,
    Policy,
    budget,
    cluster_of,
    marks,
)

pytestmark = marks()


def restart_after_a_quarter(cluster: Cluster, own_redis: Any, request: str, jobs: int) -> None:
    """Stop the Redis server once a quarter of the jobs are done, and start it again."""
    before = cluster.wait_for(request, budget(jobs), done_at_least=jobs // 4)
    assert before.done >= jobs // 4, f"no progress before the restart: {before}"
    own_redis.stop()
    time.sleep(1.0)
    own_redis.start()


def test_a_redis_restart_mid_run_loses_nothing_and_creates_nothing_twice(
    cluster: Cluster, own_redis: Any
) -> None:
    ids = cluster.ingest(FAULT_LISTINGS)
    jobs = len(ids) * len(MARKETPLACES)
    cluster.start_worker("dramatiq")
    cluster.start_worker("syndication")
    request = cluster.transfer()

    restart_after_a_quarter(cluster, own_redis, request, jobs)
    at_restart = cluster.outcome(request)
    assert at_restart.done < jobs, "the batch was over before the restart; nothing was proven"

    outcome = cluster.wait_for(request, budget(jobs))
    assert outcome.finished, f"after the restart {outcome.done}/{outcome.total} are done"
    assert outcome.failed == 0, outcome.failures[:5]
    states = cluster.assert_every_pair_final(ids, MARKETPLACES, DELIVERED)
    cluster.assert_nothing_created_twice()
    for name, created in cluster.creations().items():
        assert sorted(created) == ids, f"{name} is missing listings"
    cluster.check_workers_alive()
    assert all(worker.poll() is None for worker in cluster.workers), "a worker gave up on Redis"
    unconfirmed = cluster.wait_published(30.0)
    assert not unconfirmed, (
        f"{len(unconfirmed)} listings the sandbox published stay unconfirmed after the restart "
        f"(their publication checks were lost), e.g. {list(unconfirmed.items())[:3]}")
    print(f"\nredis restarted at {at_restart.done}/{jobs} done; states: {states}")


RETRYING = Policy(http_attempts=1, max_retries=8, min_backoff_ms=1_500)
"""One HTTP attempt per try and a long backoff: many transfer messages wait in the delay
queue (``transfers.DQ``) for their next try at the moment Redis goes away."""
AFTER_RESTART = 60.0
"""Seconds the retries may take once Redis is back and the marketplaces answer again:
several times the longest backoff a job can have been given before the restart. The
wait adds the time the jobs still to do take (:func:`budget`'s rate), so the long run's
thousands of remaining jobs are not mistaken for lost ones."""


def test_a_redis_restart_loses_no_transfer_waiting_for_its_retry(
    tmp_path: Path, own_redis: Any
) -> None:
    for cluster in cluster_of(tmp_path, own_redis.url, RETRYING, publish_delay=0.5):
        ids = cluster.ingest(FAULT_LISTINGS)
        jobs = len(ids) * len(MARKETPLACES)
        for seed, name in enumerate(MARKETPLACES):
            cluster.sandbox[name].faults.fail_fraction(0.4, seed=seed, statuses=(503,))
        cluster.start_worker("dramatiq")
        request = cluster.transfer()

        restart_after_a_quarter(cluster, own_redis, request, jobs)
        for name in MARKETPLACES:
            cluster.sandbox[name].faults.clear()
        at_restart = cluster.outcome(request)

        remaining = jobs - at_restart.done
        outcome = cluster.wait_for(request, AFTER_RESTART + (budget(remaining) - budget(0)))
        stuck = sorted(pair for pair, row in cluster.statuses().items() if row.state == "queued")
        assert outcome.finished and not stuck, (
            f"{len(stuck)} of the {remaining} jobs left at the restart never ran again, "
            f"e.g. {stuck[:3]}; "
            "look in the worker log for 'Exception in thread' after 'ConsumerThread"
            "(transfers.DQ)] [CRITICAL] Consumer encountered an unexpected error': "
            "RedisBroker.enqueue (called by handle_delayed_messages) lets redis.ConnectionError "
            "through untranslated, close() fails the same way, and the delay-queue consumer "
            "thread dies, so the live worker never moves a delayed message again")
        assert outcome.failed == 0, outcome.failures[:5]
        cluster.assert_every_pair_final(ids, MARKETPLACES, DELIVERED)
        cluster.assert_nothing_created_twice()
