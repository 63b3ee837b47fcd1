"""(d) A marketplace down for good: its jobs end ``failed`` with contacts, and no retry storm.

HittaHem answers every call with 503 for the whole run; Hemnet and Blocket
work. Every HittaHem job must end ``failed`` with the marketplace's message
and, in the status support staff read (DESIGN §4), HittaHem's error
contacts; the other marketplaces get everything. The number of calls HittaHem
received must stay within jobs × the most attempts one job may make (HTTP
attempts × dramatiq tries) — bounded, not a storm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fault_cluster import (
    DELIVERED,
    FAULT_LISTINGS,
    Cluster,
    Policy,
    budget,
    cluster_of,
    marks,
)

from adapters.config import load_marketplaces
from syndication.settings import Settings
from syndication.status_view import listing_status
from syndication.store.db import session_scope

pytestmark = marks()

DOWN = "hittahem"
UP = ("hemnet", "blocket")
POLICY = Policy(threads=16, max_retries=2, min_backoff_ms=100, http_attempts=2,
                http_initial_wait=0.01, http_max_wait=0.05)


def test_a_marketplace_down_for_good_fails_every_job_with_contacts_and_no_storm(
    tmp_path: Path, own_redis: Any
) -> None:
    for cluster in cluster_of(tmp_path, own_redis.url, POLICY, publish_delay=0.5):
        run(cluster)


def run(cluster: Cluster) -> None:
    ids = cluster.ingest(FAULT_LISTINGS)
    jobs = len(ids)
    cluster.sandbox[DOWN].faults.fail_fraction(1.0, statuses=(503,))
    cluster.start_worker("dramatiq")
    request = cluster.transfer()

    outcome = cluster.wait_for(request, budget(3 * jobs))
    assert outcome.finished, f"{outcome.done}/{outcome.total} done"
    cluster.assert_every_pair_final(ids, UP, DELIVERED)
    cluster.assert_every_pair_final(ids, (DOWN,), frozenset({"failed"}))
    assert outcome.failed == jobs
    assert {f.marketplace for f in outcome.failures} == {DOWN}
    assert all("503" in f.error for f in outcome.failures), outcome.failures[:3]

    calls = cluster.sandbox[DOWN].call_count()
    assert calls <= jobs * POLICY.calls_per_job, f"{calls} calls for {jobs} jobs: a retry storm"
    assert cluster.sandbox[DOWN].creations == {}
    starts = cluster.starts(request)
    assert max(n for (_, mp), n in starts.items() if mp == DOWN) <= POLICY.max_retries + 1

    contacts = {name: mp.contacts for name, mp in load_marketplaces(
        Settings.from_env(cluster.env)).items()}
    with session_scope(cluster.engine) as session:
        for listing_id in ids:
            rows = listing_status(session, listing_id, contacts)["marketplaces"]
            entry = next(row for row in rows if row["marketplace"] == DOWN)
            assert entry["state"] == "failed" and "503" in entry["error"]
            assert entry["contacts"] and entry["contacts"]["name"], entry
            assert entry["contacts"]["email"] or entry["contacts"]["phone"], entry
    print(f"\n{jobs} jobs against a dead marketplace: {calls} calls "
          f"({calls / jobs:.1f} per job, budget {POLICY.calls_per_job}); "
          f"example error: {outcome.failures[0].error}")
