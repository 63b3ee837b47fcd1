"""(b) The Redis server restarted mid-run, append-only persistence on: nothing lost or doubled.

Two worker processes transfer a batch; when about a quarter of the jobs are
done the Redis server (``--appendonly yes``) is stopped and started again on
the same port and data folder. The workers must reconnect on their own, the
queued and delayed messages must survive in the append-only file, and every
listing × marketplace must end ``sent`` or ``published`` with each listing
created exactly once on each marketplace.
"""

from __future__ import annotations

import time
from typing import Any

from fault_cluster import DELIVERED, FAULT_LISTINGS, MARKETPLACES, Cluster, budget, marks

pytestmark = marks()


def test_a_redis_restart_mid_run_loses_nothing_and_creates_nothing_twice(
    cluster: Cluster, own_redis: Any
) -> None:
    ids = cluster.ingest(FAULT_LISTINGS)
    jobs = len(ids) * len(MARKETPLACES)
    cluster.start_worker("dramatiq")
    cluster.start_worker("syndication")
    request = cluster.transfer()

    before = cluster.wait_for(request, budget(jobs), done_at_least=jobs // 4)
    assert before.done >= jobs // 4, f"no progress before the restart: {before}"
    own_redis.stop()
    time.sleep(1.0)
    own_redis.start()
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
    print(f"\nredis restarted at {at_restart.done}/{jobs} done; states: {states}")
