"""Benchmark: N listings × 3 marketplaces transferred through the Redis broker to the sandbox.

    python bench/transfer.py                          # 300 listings, own redis-server, SQLite
    python bench/transfer.py --listings 1000 --threads 16 --redis-url redis://127.0.0.1:6379/0
    python bench/transfer.py --database-url postgresql://…/bench   # an empty PostgreSQL database
    python bench/transfer.py --quick                  # 60 listings

Ingests N generated listings (every one selecting the three marketplaces) into a
temporary SQLite store (or the empty database ``--database-url`` names), starts the
sandbox marketplaces over HTTP on loopback in a process of their own, and runs one
transfer of the office through dramatiq's RedisBroker with a real ``syndication
worker`` process of ``--threads`` threads: decision, preconditions, feed building and
XSD validation, delivery over HTTP, status and history stored. The fan-out and the
progress poll run in this process, outside the timed worker. The time runs from the
request until every job has a final state; the worker's CPU time (its process tree,
from ``/proc``) over the same span, divided by the jobs, is ``cpu_ms_per_job``.

The floor is measured in the same run, on the same broker with the same threads, in
a worker process of its own (``bench/_transfer_floor.py``): the bare I/O of the same
jobs — one no-op dramatiq message, one kept-alive HTTP PUT of the pair's prebuilt
document to the sandbox, and the job's two write transactions on the bare driver
(sqlite3 / psycopg: one status row updated, one history row inserted, one job-start
row inserted and deleted). Rows (``BENCH {json}`` lines, read by ``bench/run_all.py``):

* ``transfer_floor`` — transfers/s ÷ floor jobs/s (goal ≥ 0.7);
* ``transfer`` — transfers/s ÷ no-op messages/s (the queue's own speed; the row's
  meaning before the floor was measured);
* ``cpu_ms_per_job`` — the goal of 3 ms ÷ the worker's CPU ms per job (≥ 1: within it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import dramatiq  # noqa: E402
from _common import input_bytes, machine, report  # noqa: E402

from syndication.cli.transfer import queue_request, start_queue  # noqa: E402
from syndication.ingest import ingest_document  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.runtime import Runtime  # noqa: E402
from syndication.settings import Settings  # noqa: E402
from syndication.store import make_engine, migrate  # noqa: E402
from syndication.transfer import Scope, request_outcome, wait_for_request  # noqa: E402

SANDBOX = """
import sys
from adapters.sandbox.__main__ import main
sys.exit(main(["--publish-delay", "0", "--write-config", sys.argv[1]]))
"""
"""The sandbox in a process of its own (it must not share the benchmark's GIL); it sets
TCP_NODELAY, so kept-alive answers are not held back by Nagle's algorithm."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """``url``, or a redis-server of this run's own on a free loopback port."""
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("error: no redis-server on PATH; pass --redis-url")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def sandbox_process(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The sandbox marketplaces in a child process writing the marketplaces file ``config``."""
    log = config.with_suffix(".log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, str(config)], cwd=ROOT,
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


def watch(sandbox: subprocess.Popen[bytes]) -> Callable[[object], None]:
    """A progress callback that stops the benchmark if the sandbox process died."""

    def check(_outcome: object) -> None:
        if sandbox.poll() is not None:
            raise RuntimeError(f"the sandbox process ended (exit status {sandbox.returncode})")

    return check


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and every descendant, from ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(p, 0.0) for p in tree)


@contextmanager
def worker_process(
    settings: Settings, threads: int, log: Path, processes: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``syndication worker`` (dramatiq's worker on ``worker.py``) for ``settings``,
    with ``processes`` worker processes."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SYNDICATION_DATABASE_URL": settings.database_url,
        "SYNDICATION_BROKER_URL": settings.broker_url or "",
        "SYNDICATION_MARKETPLACES": str(settings.marketplaces_file),
        "SYNDICATION_CONFIRM_DELAY_MS": str(settings.confirm_delay_ms),
        "SYNDICATION_MIN_BACKOFF_MS": str(settings.min_backoff_ms),
        "SYNDICATION_MAX_RETRIES": str(settings.max_retries),
        "SYNDICATION_LOG_LEVEL": "ERROR",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "syndication", "worker", "--threads", str(threads),
             "--processes", str(processes)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Floor:
    """The floor worker process (``bench/_transfer_floor.py``) and its batches."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_transfer_floor.py"), *args],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        self._expect("ready")

    def _expect(self, line: str) -> None:
        assert self.process.stdout is not None
        while True:
            got = self.process.stdout.readline()
            if not got:
                raise RuntimeError(f"the floor process ended before saying {line!r}")
            if got.strip() == line:
                return

    def run(self, actor: Any, messages: list[dict[str, Any]]) -> float:
        """Seconds from the first send until the floor process finished ``messages``."""
        started = time.perf_counter()
        for kwargs in messages:
            actor.send_with_options(kwargs={**kwargs, "total": len(messages)})
        self._expect(f"done {actor.actor_name} {len(messages)}")
        return time.perf_counter() - started

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def prebuilt_documents(engine: Any, listing_ids: list[str], folder: Path) -> list[dict[str, str]]:
    """Every pair's create document, built and written to ``folder`` before any timing;
    the floor's messages, one per pair."""
    from syndication.store.db import session_scope
    from syndication.store.repository import load_feed_inputs
    from syndication.transfer import outgoing

    folder.mkdir()
    jobs: list[dict[str, str]] = []
    with session_scope(engine) as session:
        inputs = load_feed_inputs(session, listing_ids)
    for listing_id in listing_ids:
        feed_input = inputs[listing_id]
        for marketplace in feed_input.office.licence:
            planned = outgoing(feed_input, marketplace, None)
            assert planned.document is not None, (listing_id, marketplace, planned)
            (folder / f"{listing_id}.{marketplace}.xml").write_bytes(planned.document)
            jobs.append({"listing_id": listing_id, "marketplace": marketplace,
                         "office_id": feed_input.office.id})
    return jobs


def floor_actors(broker: dramatiq.Broker) -> tuple[Any, Any]:
    """The floor's actors as this process sends them (their bodies run in the floor process)."""

    @dramatiq.actor(broker=broker, queue_name="bench-noop", max_retries=0)
    def bench_noop(total: int) -> None:
        """Runs in the floor process."""

    @dramatiq.actor(broker=broker, queue_name="bench-floor", max_retries=0)
    def bench_floor(listing_id: str, marketplace: str, office_id: str, total: int) -> None:
        """Runs in the floor process."""

    return bench_noop, bench_floor


WARM = 20
"""Listings of a second office, transferred first to warm the worker (imports, connections)."""
IDLE_SECONDS = 3.0
"""How long the warm worker's idle CPU is measured before the timed transfer (reported)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listings", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="60 listings")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--processes", type=int, default=1,
                        help="worker processes sharing the store and Redis (default 1; the "
                             "scale-out rows of docs/scaling.md)")
    parser.add_argument("--redis-url", default=os.environ.get("SYNDICATION_BENCH_REDIS_URL"),
                        help="a Redis to use (default: start a redis-server of our own)")
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    args = parser.parse_args(argv)
    count = 60 if args.quick else args.listings
    configure("ERROR")

    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as scratch_name, \
            redis_server(args.redis_url) as redis_url, \
            sandbox_process(Path(scratch_name) / "marketplaces.toml") as sandbox:
        import redis

        scratch = Path(scratch_name)
        redis.Redis.from_url(redis_url).flushdb()
        settings = Settings(
            database_url=args.database_url or f"sqlite:///{scratch / 'bench.db'}",
            broker_url=redis_url,
            marketplaces_file=scratch / "marketplaces.toml",
            worker_threads=args.threads,
            confirm_delay_ms=3_600_000,
            min_backoff_ms=500,
            max_retries=3,
            log_level="ERROR",
        )
        engine = make_engine(settings.database_url)
        migrate(engine)
        for office_id, prefix, n in (("WARM", "W", WARM), ("OFF1", "OBJ", count)):
            report_ = ingest_document(engine, input_bytes(n, office_id, prefix=prefix))
            assert report_.ok, report_.errors[:3]
        ids = [f"OBJ{n:05d}" for n in range(1, count + 1)]
        floor_jobs = prebuilt_documents(engine, ids, scratch / "documents")
        warm_jobs = prebuilt_documents(engine, [f"W{n:05d}" for n in range(1, WARM + 1)],
                                       scratch / "warm-documents")
        for path in (scratch / "warm-documents").iterdir():
            path.rename(scratch / "documents" / path.name)
        engine.dispose()

        runtime = Runtime.from_settings(settings)
        broker = start_queue(settings, runtime)
        with worker_process(settings, args.threads, scratch / "worker.log",
                            args.processes) as worker:
            warm = queue_request(runtime, Scope("office", "WARM"))
            wait_for_request(runtime.engine, warm.request_id, interval=0.05, timeout=300,
                             on_progress=watch(sandbox))
            idle_from, idle_began = tree_cpu_seconds(worker.pid), time.perf_counter()
            time.sleep(IDLE_SECONDS)
            cpu_before = tree_cpu_seconds(worker.pid)
            idle_ms_per_s = (cpu_before - idle_from) * 1000 / (time.perf_counter() - idle_began)
            started = time.perf_counter()
            summary = queue_request(runtime, Scope("office", "OFF1"))
            fan_out_seconds = time.perf_counter() - started
            done_at_fan_out = request_outcome(runtime.engine, summary.request_id).done
            outcome = wait_for_request(runtime.engine, summary.request_id, interval=0.05,
                                       timeout=900, on_progress=watch(sandbox))
            transfer_seconds = time.perf_counter() - started
            cpu_seconds = tree_cpu_seconds(worker.pid) - cpu_before
            if worker.poll() is not None:
                raise RuntimeError(f"the worker ended (exit status {worker.returncode})")

        noop, bare = floor_actors(broker)
        floor = Floor(["--redis-url", redis_url, "--database-url", settings.database_url,
                       "--threads", str(args.threads),
                       "--marketplaces-file", str(settings.marketplaces_file),
                       "--documents", str(scratch / "documents")])
        try:
            floor.run(noop, [{}] * 50)
            floor.run(bare, warm_jobs)
            noop_seconds = floor.run(noop, [{}] * summary.jobs)
            floor_cpu_before = tree_cpu_seconds(floor.process.pid)
            floor_seconds = floor.run(bare, floor_jobs)
            floor_cpu_ms = (tree_cpu_seconds(floor.process.pid) - floor_cpu_before) * 1000 \
                / len(floor_jobs)
        finally:
            floor.close()
        runtime.close()

    if not outcome.finished or outcome.failed:
        print(f"error: transfer incomplete: {outcome.counts_text()}", file=sys.stderr)
        return 1
    jobs = summary.jobs
    transfers_per_s = jobs / transfer_seconds
    floor_per_s = len(floor_jobs) / floor_seconds
    noops_per_s = jobs / noop_seconds
    cpu_ms = cpu_seconds * 1000 / jobs
    after_fan_out = (jobs - done_at_fan_out) / max(transfer_seconds - fan_out_seconds, 1e-9)
    info = machine()
    store = "PostgreSQL" if settings.database_url.startswith("postgresql") else "SQLite"
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"listings: {count} × 3 marketplaces = {jobs} transfer jobs, {args.processes} worker "
          f"process(es) of {args.threads} threads, Redis broker, sandbox over HTTP, {store}")
    print(f"transfers: {transfer_seconds:.2f} s (fan-out {fan_out_seconds:.2f} s), "
          f"{transfers_per_s:.1f} transfers/s ({outcome.counts_text()}); after the fan-out "
          f"ended: {after_fan_out:.1f} transfers/s ({jobs - done_at_fan_out} jobs)")
    print(f"worker CPU: {cpu_seconds:.2f} s, {cpu_ms:.2f} ms per job (idle, before: "
          f"{idle_ms_per_s:.0f} ms per second)")
    print(f"floor (no-op message + PUT + two bare transactions): {floor_seconds:.2f} s, "
          f"{floor_per_s:.1f} jobs/s, {floor_cpu_ms:.2f} ms CPU per job")
    print(f"no-op messages: {noop_seconds:.2f} s, {noops_per_s:.1f} messages/s")
    print(f"ratio transfers/s ÷ floor jobs/s: {transfers_per_s / floor_per_s:.3f}")
    common = {"jobs": jobs, "threads": args.threads, "processes": args.processes, "store": store,
              "fan_out_s": round(fan_out_seconds, 2),
              "after_fan_out_per_s": round(after_fan_out, 1)}
    report("transfer", ratio=round(transfers_per_s / noops_per_s, 4),
           value=round(transfers_per_s, 1), unit="transfers/s", floor=round(noops_per_s, 1),
           floor_unit="no-op messages/s", **common)
    report("cpu_ms_per_job", ratio=round(CPU_GOAL_MS / cpu_ms, 3), value=round(cpu_ms, 2),
           unit="ms CPU/job", floor=CPU_GOAL_MS, floor_unit="ms goal",
           floor_process_ms=round(floor_cpu_ms, 2), idle_ms_per_s=round(idle_ms_per_s, 1),
           **common)
    report("transfer_floor", ratio=round(transfers_per_s / floor_per_s, 4),
           value=round(transfers_per_s, 1), unit="transfers/s", floor=round(floor_per_s, 1),
           floor_unit="floor jobs/s", **common)
    return 0


CPU_GOAL_MS = 3.0
"""Issue 13's goal for the worker's CPU per job."""


if __name__ == "__main__":
    sys.exit(main())
