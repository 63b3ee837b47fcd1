"""Benchmark: N listings × 3 marketplaces transferred through the Redis broker to the sandbox.

    python bench/transfer.py                          # 300 listings, own redis-server, SQLite
    python bench/transfer.py --listings 1000 --threads 16 --redis-url redis://127.0.0.1:6379/0
    python bench/transfer.py --quick                  # 60 listings

Ingests N generated listings (every one selecting the three marketplaces) into a
temporary SQLite store (or the empty database ``--database-url`` names), starts the
sandbox marketplaces over HTTP on loopback in a process of their own, and runs one
``transfer --all`` through dramatiq's RedisBroker with a dramatiq worker of
``--threads`` threads: fan-out, decision, preconditions, feed building and XSD
validation, delivery over HTTP, status and history stored. The time runs from the
request until every job has a final state.

The floor is measured in the same run, on the same broker and the same worker: as
many no-op messages as there were transfer jobs, timed from the first send until
the last has been processed. The ratio transfers/s ÷ no-op messages/s says what
share of the queue's own speed the transfers keep (1.0 = as fast as the queue).
The last line is ``BENCH {json}`` for ``bench/run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import dramatiq  # noqa: E402
from _common import input_bytes, machine, report  # noqa: E402

from syndication.broker import in_process_worker  # noqa: E402
from syndication.cli.transfer import queue_request, start_queue  # noqa: E402
from syndication.ingest import ingest_document  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.runtime import Runtime  # noqa: E402
from syndication.settings import Settings  # noqa: E402
from syndication.store import make_engine, migrate  # noqa: E402
from syndication.transfer import Scope, wait_for_request  # noqa: E402

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


class NoOps:
    """The floor: an actor that does nothing, on the benchmark's broker."""

    def __init__(self) -> None:
        self.done = 0
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.expected = 0

        @dramatiq.actor(queue_name="bench-noop", max_retries=0)
        def bench_noop(n: int) -> None:
            with self.lock:
                self.done += 1
                if self.done >= self.expected:
                    self.finished.set()

        self.actor = bench_noop

    def run(self, count: int) -> float:
        """Seconds from the first send until ``count`` no-op messages were processed."""
        self.done, self.expected = 0, count
        self.finished.clear()
        started = time.perf_counter()
        for n in range(count):
            self.actor.send(n)
        if not self.finished.wait(timeout=600):
            raise RuntimeError("the no-op messages were not all processed")
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--listings", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="60 listings")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--redis-url", default=os.environ.get("SYNDICATION_BENCH_REDIS_URL"),
                        help="a Redis to use (default: start a redis-server of our own)")
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    args = parser.parse_args(argv)
    count = 60 if args.quick else args.listings
    configure("ERROR")

    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as scratch, \
            redis_server(args.redis_url) as redis_url, \
            sandbox_process(Path(scratch) / "marketplaces.toml") as sandbox:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        settings = Settings(
            database_url=args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}",
            broker_url=redis_url,
            marketplaces_file=Path(scratch) / "marketplaces.toml",
            worker_threads=args.threads,
            confirm_delay_ms=3_600_000,
            min_backoff_ms=500,
            max_retries=3,
            log_level="ERROR",
        )
        engine = make_engine(settings.database_url)
        migrate(engine)
        report_ = ingest_document(engine, input_bytes(count))
        assert report_.ok, report_.errors[:3]
        engine.dispose()

        runtime = Runtime.from_settings(settings)
        broker = start_queue(settings, runtime)
        noops = NoOps()
        with in_process_worker(broker, args.threads):
            noops.run(min(50, count))  # warm the connections and the worker
            started = time.perf_counter()
            summary = queue_request(runtime, Scope("all"))
            fan_out_seconds = time.perf_counter() - started
            outcome = wait_for_request(runtime.engine, summary.request_id, interval=0.05,
                                       timeout=900, on_progress=watch(sandbox))
            transfer_seconds = time.perf_counter() - started
            floor_seconds = noops.run(summary.jobs)
        runtime.close()

    if not outcome.finished or outcome.failed:
        print(f"error: transfer incomplete: {outcome.counts_text()}", file=sys.stderr)
        return 1
    transfers_per_s = summary.jobs / transfer_seconds
    noops_per_s = summary.jobs / floor_seconds
    ratio = transfers_per_s / noops_per_s
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}")
    print(f"listings: {count} × 3 marketplaces = {summary.jobs} transfer jobs, "
          f"{args.threads} worker threads, Redis broker, sandbox over HTTP")
    print(f"transfers: {transfer_seconds:.2f} s (fan-out {fan_out_seconds:.2f} s), "
          f"{transfers_per_s:.1f} transfers/s ({outcome.counts_text()})")
    print(f"no-op floor: {floor_seconds:.2f} s, {noops_per_s:.1f} messages/s")
    print(f"ratio transfers/s ÷ no-op messages/s: {ratio:.3f}")
    report("transfer", ratio=round(ratio, 4), value=round(transfers_per_s, 1),
           unit="transfers/s", floor=round(noops_per_s, 1), floor_unit="no-op messages/s",
           jobs=summary.jobs, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
