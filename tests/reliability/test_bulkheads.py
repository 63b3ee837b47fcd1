"""(e) Bulkheads: a hung, a trickling and a dead marketplace hold up no other.

One test per fault, each in one deployment and one worker process of 8 threads: first a
run without the fault (office BASE) measures how long Hemnet and Blocket take; then HittaHem
gets the fault and a second office (FAULTY) is transferred:

* ``hang`` — HittaHem accepts every connection and never answers;
* ``trickle`` — every call takes effect and the answer comes a byte a second, so only the
  HTTP deadline ends it (the read timeout never fires);
* ``down`` — HittaHem's port is closed (connection refused).

Hemnet and Blocket must finish the second office about as fast as the first (at most
twice the time, plus a few seconds for the short CI run's noise). HittaHem's pairs must wait
``queued`` with the reason ("väntar på HittaHem: …") while the fault lasts; after it heals,
every pair of both offices reaches ``sent``/``published`` with no one re-running anything,
and each listing is created exactly once per marketplace (the trickled calls took effect:
the idempotency key makes their retries replays). The output gives both rates and how long
the slowest pair took to settle after the fault healed.

Size: ``SYNDICATION_FAULT_LISTINGS // 5`` listings per office (40 in CI, 400 in the long run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_cluster import (
    DELIVERED,
    FAULT_LISTINGS,
    MARKETPLACES,
    Cluster,
    Policy,
    cluster_of,
    marks,
)

from adapters.sandbox import Sandbox

pytestmark = marks()

SIZE = max(20, FAULT_LISTINGS // 5)
FAULTY = "hittahem"
HEALTHY = ("hemnet", "blocket")
POLICY = Policy(threads=8, max_retries=9, min_backoff_ms=150, http_attempts=2,
                http_initial_wait=0.02, http_max_wait=0.1, read_timeout=1.5, deadline=3.0,
                circuit_threshold=3, circuit_cooldown_ms=1_000)
"""Short clocks; the retry budget (9 retries, backoff from 150 ms) outlasts every fault here."""

Step = Callable[[Sandbox], Any]
FAULTS: dict[str, tuple[Step, Step]] = {
    "hang": (lambda s: s[FAULTY].faults.hang_all(), lambda s: s[FAULTY].faults.clear()),
    "trickle": (lambda s: s[FAULTY].faults.trickle_all(1.0), lambda s: s[FAULTY].faults.clear()),
    "down": (lambda s: s.down(FAULTY), lambda s: s.up(FAULTY)),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_faulty_marketplace_holds_up_no_other(tmp_path: Path, own_redis: Any,
                                                fault: str) -> None:
    for cluster in cluster_of(tmp_path, own_redis.url, POLICY, publish_delay=0.2):
        run(cluster, fault)


def settle(cluster: Cluster, ids: list[str], marketplaces: tuple[str, ...],
           began: float, timeout: float) -> float:
    """Seconds from ``began`` until no pair of ``ids`` × ``marketplaces`` is ``queued``."""
    deadline = began + timeout
    while True:
        rows = cluster.statuses()
        waiting = [(lid, mp) for lid in ids for mp in marketplaces
                   if (lid, mp) not in rows or rows[(lid, mp)].state == "queued"]
        if not waiting:
            return time.monotonic() - began
        assert time.monotonic() < deadline, f"{len(waiting)} pairs still queued: {waiting[:3]}"
        cluster.check_workers_alive()
        time.sleep(0.1)


def wait_for_note(cluster: Cluster, ids: list[str], timeout: float) -> str:
    """The first "waiting for HittaHem" note on a queued HittaHem pair of ``ids``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cluster.statuses()
        for lid in ids:
            row = rows.get((lid, FAULTY))
            if row is not None and row.state == "queued" and "väntar på HittaHem" in (
                row.error or ""
            ):
                return row.error or ""
        time.sleep(0.1)
    raise AssertionError("no HittaHem pair shows that it waits for the marketplace")


def run(cluster: Cluster, fault: str) -> None:
    base = cluster.ingest(SIZE, office_id="BASE", prefix="B")
    faulty = cluster.ingest(SIZE, office_id="FAULTY", prefix="F")
    cluster.start_worker("dramatiq")
    limit = 60.0 + SIZE

    began = time.monotonic()
    first = cluster.transfer("--office", "BASE")
    normal = settle(cluster, base, HEALTHY, began, limit)
    assert cluster.wait_for(first, limit).finished

    start_fault, heal = FAULTS[fault]
    start_fault(cluster.sandbox)
    began = time.monotonic()
    second = cluster.transfer("--office", "FAULTY")
    with_fault = settle(cluster, faulty, HEALTHY, began, limit)
    note = wait_for_note(cluster, faulty, limit)
    assert not cluster.outcome(second).finished, "HittaHem's pairs should still be waiting"
    calls_while_down = cluster.sandbox[FAULTY].call_count()

    heal(cluster.sandbox)
    healed = time.monotonic()
    outcome = cluster.wait_for(second, limit * 2)
    settled = time.monotonic() - healed
    assert outcome.finished and outcome.failed == 0, (outcome.done, outcome.failures[:3])
    cluster.assert_every_pair_final(base + faulty, MARKETPLACES, DELIVERED)
    cluster.assert_nothing_created_twice()
    for name in MARKETPLACES:
        created = cluster.sandbox[name].creations
        assert all(created.get(lid) == 1 for lid in base + faulty), name

    allowed = 2 * normal + 3.0
    assert with_fault <= allowed, (
        f"Hemnet and Blocket took {with_fault:.1f} s with HittaHem {fault}, "
        f"{normal:.1f} s without (allowed {allowed:.1f} s)"
    )
    pairs = len(faulty) * len(HEALTHY)
    print(f"\n{fault}: Hemnet+Blocket {pairs / normal:.1f} pairs/s without the fault, "
          f"{pairs / with_fault:.1f} with HittaHem {fault}; {calls_while_down} HittaHem calls "
          f"during the fault; slowest pair settled {settled:.1f} s after it healed; "
          f"note: {note}")
