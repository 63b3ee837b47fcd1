"""(c) Marketplaces failing 30 % of calls with 5xx and timeouts: all delivered, within budget.

Every sandbox marketplace fails about 30 % of its calls: most answer 500, 502
or 503 at once; a third of the failures take effect and then hold the answer
back past the transport's read timeout (the lost receipt only the
idempotency key makes safe to retry). Everything must be delivered in the end
(``sent`` or ``published``), nothing created twice, and no job may use more
than its retry budget: HTTP attempts × dramatiq tries for its calls, and
dramatiq's retries for its starts.
"""

from __future__ import annotations

from fault_cluster import DELIVERED, FAULT_LISTINGS, MARKETPLACES, Cluster, budget, marks

pytestmark = marks()


def test_flaky_marketplaces_get_everything_in_the_end_within_the_retry_budget(
    cluster: Cluster,
) -> None:
    ids = cluster.ingest(FAULT_LISTINGS)
    jobs = len(ids) * len(MARKETPLACES)
    for seed, name in enumerate(MARKETPLACES):
        cluster.sandbox[name].faults.fail_fraction(
            0.3, seed=seed, statuses=(500, 502, 503), timeout_share=0.33,
            hang=cluster.policy.read_timeout + 0.5,
        )
    cluster.start_worker("dramatiq", processes=2)
    request = cluster.transfer()

    outcome = cluster.wait_for(request, budget(jobs) * 2)
    assert outcome.finished, f"{outcome.done}/{outcome.total} done"
    assert outcome.failed == 0, outcome.failures[:5]
    states = cluster.assert_every_pair_final(ids, MARKETPLACES, DELIVERED)
    cluster.assert_nothing_created_twice()

    policy = cluster.policy
    for name in MARKETPLACES:
        marketplace = cluster.sandbox[name]
        assert sorted(marketplace.creations) == ids, f"{name} is missing listings"
        for listing_id in ids:
            calls = marketplace.call_count(listing_id, "create")
            assert calls <= policy.calls_per_job, (
                f"{listing_id} on {name}: {calls} create calls, budget {policy.calls_per_job}")
    starts = cluster.starts(request)
    assert max(starts.values()) <= policy.max_retries + 1
    retried = sum(1 for n in starts.values() if n > 1)
    calls = sum(cluster.sandbox[name].call_count(action="create") for name in MARKETPLACES)
    replays = sum(cluster.sandbox[name].replays for name in MARKETPLACES)
    assert replays > 0, "no lost receipt was retried: the timeouts never happened"
    print(f"\n{jobs} jobs, {calls} create calls ({calls / jobs:.2f} per job), {replays} replayed "
          f"answers, {retried} jobs retried by the queue; states: {states}")
