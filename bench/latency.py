"""Benchmark: transfers per second of one worker process at 0, 20 and 100 ms of marketplace latency.

    python bench/latency.py                        # 300 listings × 3 marketplaces per latency
    python bench/latency.py --latencies 100 --listings 1000 --concurrency 512
    python bench/latency.py --database-url postgresql://…/bench   # an empty PostgreSQL database
    python bench/latency.py --quick                # 100 listings

For each latency, a fresh run: N generated listings (every one selecting the three
marketplaces) ingested into a new temporary SQLite store (or the emptied database
``--database-url`` names), the sandbox marketplaces in a process of their own
answering every call after ``--latency-ms`` (asyncio: the sandbox holds no thread
while it waits), and one transfer of the office through dramatiq's RedisBroker
with one real ``syndication worker`` process: the concurrent worker
(:mod:`syndication.concurrent`) with ``--threads`` threads and up to
``--concurrency`` jobs in flight. A warm-up office goes first. The time runs from
the request until every job has a final state.

The floor is measured in the same run, at the same latency, with the same threads
and concurrency, in a worker process of its own (``bench/_latency_floor.py``): one
no-op message, one kept-alive async ``PUT`` of the pair's prebuilt document to the
sandbox and the job's two bare write transactions, per pair. Rows (``BENCH {json}``
lines, read by ``bench/run_all.py``): ``transfer_latency_0ms``,
``transfer_latency_20ms``, ``transfer_latency_100ms`` — transfers/s ÷ floor jobs/s,
with the rate itself as ``value`` (issue 13's goal: ≥ 300 transfers/s at 100 ms).
The machine's load average is printed with each row: on a shared machine, compare
ratios, not rates.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _common import input_bytes, machine, report  # noqa: E402
from transfer import (  # noqa: E402
    WARM,
    Floor,
    prebuilt_documents,
    redis_server,
    tree_cpu_seconds,
    watch,
    worker_process,
)

from syndication.cli.transfer import queue_request, start_queue  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.runtime import Runtime  # noqa: E402
from syndication.settings import Settings  # noqa: E402
from syndication.store import make_engine, migrate  # noqa: E402
from syndication.transfer import Scope, wait_for_request  # noqa: E402

SANDBOX = """
import sys
from adapters.sandbox.__main__ import main
sys.exit(main(["--publish-delay", "0", "--latency-ms", sys.argv[2], "--write-config", sys.argv[1]]))
"""
"""The sandbox in a process of its own, answering after the run's latency."""

GOAL_AT_100MS = 300.0
"""Issue 13's goal: transfers/s of one worker process at 100 ms of marketplace latency."""


@contextmanager
def sandbox_process(config: Path, latency_ms: float) -> Iterator[subprocess.Popen[bytes]]:
    """The sandbox marketplaces in a child process answering after ``latency_ms``."""
    log = config.with_suffix(".log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, str(config), f"{latency_ms:g}"], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while not (config.exists() and "hittahem" in config.read_text(encoding="utf-8")):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class LatencyFloor(Floor):
    """The floor worker process of this benchmark (``bench/_latency_floor.py``)."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_latency_floor.py"), *args],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        self._expect("ready")


def floor_actor(broker: Any) -> Any:
    """The floor's actor as this process sends it (its body runs in the floor process);
    declared once per process (a later run's broker takes the earlier one's actors)."""
    import dramatiq

    if "bench_latency_floor" in broker.actors:
        return broker.get_actor("bench_latency_floor")

    @dramatiq.actor(broker=broker, queue_name="bench-latency-floor", max_retries=0)
    def bench_latency_floor(listing_id: str, marketplace: str, office_id: str,
                            total: int) -> None:
        """Runs in the floor process."""

    return bench_latency_floor


def empty_database(url: str) -> None:
    """Drop every table of the database ``url`` names, for a fresh run on it."""
    from sqlalchemy import MetaData

    engine = make_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()


def one_run(args: argparse.Namespace, latency_ms: float, count: int) -> dict[str, Any]:
    """One transfer and its floor at ``latency_ms``; the figures of the row."""
    import redis

    with tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch_name, \
            redis_server(args.redis_url) as redis_url, \
            sandbox_process(Path(scratch_name) / "marketplaces.toml", latency_ms) as sandbox:
        scratch = Path(scratch_name)
        redis.Redis.from_url(redis_url).flushdb()
        if args.database_url:
            empty_database(args.database_url)
        settings = Settings(
            database_url=args.database_url or f"sqlite:///{scratch / 'bench.db'}",
            broker_url=redis_url, marketplaces_file=scratch / "marketplaces.toml",
            worker_threads=args.threads, concurrency=args.concurrency,
            confirm_delay_ms=3_600_000, min_backoff_ms=500, max_retries=3, log_level="ERROR",
        )
        engine = make_engine(settings.database_url)
        migrate(engine)
        from syndication.ingest import ingest_document

        for office_id, prefix, n in (("WARM", "W", WARM), ("OFF1", "OBJ", count)):
            ingested = ingest_document(engine, input_bytes(n, office_id, prefix=prefix))
            assert ingested.ok, ingested.errors[:3]
        ids = [f"OBJ{n:05d}" for n in range(1, count + 1)]
        floor_jobs = prebuilt_documents(engine, ids, scratch / "documents")
        warm_jobs = prebuilt_documents(engine, [f"W{n:05d}" for n in range(1, WARM + 1)],
                                       scratch / "warm-documents")
        for path in (scratch / "warm-documents").iterdir():
            path.rename(scratch / "documents" / path.name)
        engine.dispose()

        runtime = Runtime.from_settings(settings)
        broker = start_queue(settings, runtime)
        os.environ["SYNDICATION_CONCURRENCY"] = str(args.concurrency)
        with worker_process(settings, args.threads, scratch / "worker.log") as worker:
            warm = queue_request(runtime, Scope("office", "WARM"))
            wait_for_request(runtime.engine, warm.request_id, interval=0.05, timeout=300,
                             on_progress=watch(sandbox))
            cpu_before = tree_cpu_seconds(worker.pid)
            started = time.perf_counter()
            summary = queue_request(runtime, Scope("office", "OFF1"))
            outcome = wait_for_request(runtime.engine, summary.request_id, interval=0.05,
                                       timeout=900, on_progress=watch(sandbox))
            seconds = time.perf_counter() - started
            cpu_seconds = tree_cpu_seconds(worker.pid) - cpu_before
            if worker.poll() is not None:
                raise RuntimeError(f"the worker ended (exit status {worker.returncode})")
        load = os.getloadavg()[0]

        bare = floor_actor(broker)
        floor = LatencyFloor([
            "--redis-url", redis_url, "--database-url", settings.database_url,
            "--threads", str(args.threads), "--concurrency", str(args.concurrency),
            "--marketplaces-file", str(settings.marketplaces_file),
            "--documents", str(scratch / "documents"),
        ])
        try:
            floor.run(bare, warm_jobs)
            floor_seconds = floor.run(bare, floor_jobs)
        finally:
            floor.close()
        runtime.close()
    if not outcome.finished or outcome.failed:
        raise SystemExit(f"error: transfer at {latency_ms:g} ms incomplete: "
                         f"{outcome.counts_text()}")
    rate = summary.jobs / seconds
    floor_rate = len(floor_jobs) / floor_seconds
    print(f"latency {latency_ms:g} ms: {summary.jobs} jobs in {seconds:.2f} s, {rate:.1f} "
          f"transfers/s; worker CPU {cpu_seconds * 1000 / summary.jobs:.2f} ms/job; floor "
          f"{floor_rate:.1f} jobs/s; ratio {rate / floor_rate:.3f}; load average {load:.1f}",
          flush=True)
    return {"ratio": round(rate / floor_rate, 4), "value": round(rate, 1),
            "unit": "transfers/s", "floor": round(floor_rate, 1), "floor_unit": "floor jobs/s",
            "jobs": summary.jobs, "threads": args.threads, "concurrency": args.concurrency,
            "latency_ms": latency_ms, "load": round(load, 1),
            "cpu_ms_per_job": round(cpu_seconds * 1000 / summary.jobs, 2),
            "store": "PostgreSQL" if settings.database_url.startswith("postgresql") else "SQLite"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listings", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="100 listings")
    parser.add_argument("--latencies", default="0,20,100",
                        help="marketplace latencies in ms, comma-separated (default 0,20,100)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--concurrency", type=int, default=256,
                        help="jobs in flight per worker process (default 256)")
    parser.add_argument("--redis-url", default=os.environ.get("SYNDICATION_BENCH_REDIS_URL"),
                        help="a Redis to use (default: start a redis-server of our own)")
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    args = parser.parse_args(argv)
    count = 100 if args.quick else args.listings
    latencies = [float(value) for value in args.latencies.split(",") if value.strip()]
    configure("ERROR")
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}; "
          f"{count} listings × 3 marketplaces per latency, one worker process of "
          f"{args.threads} threads, up to {args.concurrency} jobs in flight", flush=True)
    rows = [(latency, one_run(args, latency, count)) for latency in latencies]
    for latency, figures in rows:
        report(f"transfer_latency_{latency:g}ms", **figures)
    at_100 = [figures["value"] for latency, figures in rows if latency == 100]
    if at_100:
        verdict = "met" if at_100[0] >= GOAL_AT_100MS else "not met"
        print(f"goal ≥ {GOAL_AT_100MS:g} transfers/s at 100 ms: {at_100[0]:.1f} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
