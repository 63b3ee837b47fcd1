"""(a) ``kill -9`` a worker in the middle of a batch: after a restart nothing is lost or doubled.

A worker (``dramatiq worker``, as an operator starts it) transfers a batch of
listings to the three sandbox marketplaces; when about a quarter of the jobs
are done its whole process group is killed with SIGKILL — no shutdown, no
acknowledgement of the jobs in hand. A new worker (``syndication worker``)
is started. Every listing × marketplace must end ``sent`` or ``published``,
each listing must have been created exactly once on each marketplace, and no
job may have been started more often than the worker-death budget allows.
"""

from __future__ import annotations

from fault_cluster import DELIVERED, FAULT_LISTINGS, MARKETPLACES, Cluster, budget, marks

pytestmark = marks()


def test_a_worker_killed_mid_batch_loses_nothing_and_creates_nothing_twice(
    cluster: Cluster,
) -> None:
    ids = cluster.ingest(FAULT_LISTINGS)
    jobs = len(ids) * len(MARKETPLACES)
    first = cluster.start_worker("dramatiq")
    request = cluster.transfer()

    before_kill = cluster.wait_for(request, budget(jobs), done_at_least=jobs // 4)
    assert before_kill.done >= jobs // 4, f"no progress before the kill: {before_kill}"
    cluster.kill_worker(first)
    at_kill = cluster.outcome(request)
    assert at_kill.done < jobs, "the batch was over before the kill; nothing was proven"

    cluster.start_worker("syndication")
    outcome = cluster.wait_for(request, budget(jobs))
    assert outcome.finished, f"after the restart {outcome.done}/{outcome.total} are done"
    assert outcome.failed == 0, outcome.failures[:5]

    states = cluster.assert_every_pair_final(ids, MARKETPLACES, DELIVERED)
    assert sum(states.values()) == jobs
    cluster.assert_nothing_created_twice()
    for name, created in cluster.creations().items():
        assert sorted(created) == ids, f"{name} is missing listings"
    starts = cluster.starts(request)
    assert max(starts.values()) <= cluster.policy.max_worker_deaths, (
        "a job started more often than the worker-death budget allows")
    print(f"\nkilled at {at_kill.done}/{jobs} done; restarted jobs: "
          f"{sum(1 for n in starts.values() if n > 1)}; states: {states}")
