"""Benchmark: the fan-out of ``transfer --all`` (N listings × 3 marketplaces) while a worker runs.

    python bench/fanout.py                      # 10,000 listings, own redis-server, SQLite
    python bench/fanout.py --quick              # 1,000 listings
    python bench/fanout.py --no-worker          # the fan-out alone: its own CPU, no worker
    python bench/fanout.py --database-url postgresql://postgres:postgres@127.0.0.1:5432/bench_fanout

Ingests N generated listings (each selecting the three marketplaces) into a
temporary SQLite store (or the empty database ``--database-url`` names), starts
the sandbox marketplaces and a ``syndication worker`` process on the Redis
broker, then times ``transfer --all`` from the request until every pair is
stored (``queued``, its history event and its outbox row committed together)
and every message is in Redis (the outbox empty): the worker consumes the
jobs meanwhile, so the fan-out shares the database with a busy worker.

The floor is measured in the same run, on the same database: the bare driver
(``sqlite3`` or psycopg, no SQLAlchemy) executing the same rows — the status
rows, the history events and the outbox rows the fan-out wrote, one
executemany ``INSERT`` of each per batch and one commit per batch — into
scratch tables of the same shape, while the worker still works through the
jobs (so the floor shares the database with it too). The ratio pairs/s ÷ floor pairs/s says what
share of the bare database's insert speed the fan-out keeps, with its reads,
decisions, cursor checks and Redis sends on top (1.0 = as fast as the bare
inserts). The last line is ``BENCH {json}`` for ``bench/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _common import input_bytes, machine, report  # noqa: E402
from sqlalchemy import Column, Engine, Integer, MetaData, Table, select  # noqa: E402
from transfer import redis_server, sandbox_process  # noqa: E402

from syndication.cli.transfer import start_queue  # noqa: E402
from syndication.ingest import ingest_document  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.outbox import Relay, pending  # noqa: E402
from syndication.runtime import Runtime  # noqa: E402
from syndication.settings import Settings  # noqa: E402
from syndication.store import make_engine, migrate  # noqa: E402
from syndication.store.models import OutboxRow, TransferEventRow, TransferStatusRow  # noqa: E402
from syndication.transfer import Scope, request_transfer  # noqa: E402
from syndication.transfer.request import BATCH_SIZE, BATCH_SIZES, batch_size_for  # noqa: E402

TABLES = {
    "status": TransferStatusRow.__table__,  # type: ignore[attr-defined]
    "event": TransferEventRow.__table__,  # type: ignore[attr-defined]
    "outbox": OutboxRow.__table__,  # type: ignore[attr-defined]
}


def start_worker(env: dict[str, str], threads: int) -> subprocess.Popen[bytes]:
    """``syndication worker`` in a process group of its own, as an operator starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "syndication", "worker", "--processes", "1",
         "--threads", str(threads)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def wait_for_worker(redis_url: str, process: subprocess.Popen[bytes]) -> None:
    """Until the worker's consumers beat in Redis (it is ready to take messages)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while not client.zcard("dramatiq:__heartbeats__"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.1)
    client.close()


def inserted(table: Table) -> list[Column[Any]]:
    """The columns an ``INSERT`` gives: all but an integer key the database numbers."""
    return [c for c in table.c if not (c.primary_key and isinstance(c.type, Integer))]


def fan_out_rows(engine: Engine, request_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the fan-out wrote, as the bare driver reads them back (its own types):
    the status rows, the request's events, and an outbox row per queued event."""
    status, event, outbox = TABLES["status"], TABLES["event"], TABLES["outbox"]
    raw: Any = engine.raw_connection()
    try:
        cursor = raw.cursor()
        found: dict[str, list[tuple[Any, ...]]] = {}
        for key, table, where in (
            ("status", status, status.c.request_id == request_id),
            ("event", event, event.c.request_id == request_id),
        ):
            columns = inserted(table)
            query = select(*columns).where(where).compile(
                engine, compile_kwargs={"literal_binds": True})
            cursor.execute(str(query))
            found[key] = [tuple(row) for row in cursor.fetchall()]
        cursor.close()
    finally:
        raw.close()
    columns = [c.name for c in inserted(outbox)]
    position = {c.name: n for n, c in enumerate(inserted(event))}
    found["outbox"] = []
    for number, row in enumerate(found["event"]):
        at = row[position["at"]]
        values = {
            "queue_name": "transfers", "actor_name": "transfer_listing",
            "message_id": f"{number:032x}",
            "kwargs": json.dumps({"listing_id": row[position["listing_id"]],
                                  "marketplace": row[position["marketplace"]],
                                  "request_id": request_id}),
            "options": "{}", "not_before": at, "created_at": at,
            "claimed_by": None, "claimed_until": None, "relay_attempts": 0, "last_error": None,
        }
        found["outbox"].append(tuple(values[name] for name in columns))
    return found


def scratch_tables(engine: Engine) -> dict[str, tuple[str, list[str]]]:
    """Scratch copies of the status, event and outbox tables (same columns, keys and
    indexes); their names and inserted columns."""
    metadata = MetaData()
    made: dict[str, tuple[str, list[str]]] = {}
    for key, table in TABLES.items():
        copy = table.to_metadata(metadata, name=f"scratch_{table.name}")
        for index in copy.indexes:
            index.name = f"scratch_{index.name}"
        made[key] = (copy.name, [c.name for c in inserted(copy)])
    metadata.drop_all(engine)
    metadata.create_all(engine)
    return made


def bare_floor(engine: Engine, rows: dict[str, list[tuple[Any, ...]]], batch: int) -> float:
    """Seconds the bare driver takes to insert ``rows`` into scratch tables of the same
    shape: per batch of ``batch`` listings (3 × ``batch`` pairs), one executemany
    ``INSERT`` of statuses, events and outbox rows each, and one commit."""
    tables = scratch_tables(engine)
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    statements = {
        key: f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
        for key, (name, cols) in tables.items()
    }
    pairs = 3 * batch
    raw: Any = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for start in range(0, len(rows["status"]), pairs):
            for key, statement in statements.items():
                chunk = rows[key][start:start + pairs]
                if chunk:
                    cursor.executemany(statement, chunk)
            raw.commit()
        seconds = time.perf_counter() - started
        cursor.close()
    finally:
        raw.close()
    with engine.begin() as conn:
        for name, _ in tables.values():
            conn.exec_driver_sql(f"DROP TABLE {name}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 listings")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"listings per fan-out batch (default the store's: {BATCH_SIZE}, "
                             f"on PostgreSQL {BATCH_SIZES['postgresql']})")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--no-worker", action="store_true",
                        help="run no worker: the fan-out alone, its own CPU without a "
                             "worker beside it (the goal is measured with one)")
    parser.add_argument("--redis-url", default=os.environ.get("SYNDICATION_BENCH_REDIS_URL"),
                        help="a Redis to use (default: start a redis-server of our own)")
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    args = parser.parse_args(argv)
    count = 1_000 if args.quick else args.listings
    configure("ERROR")

    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as scratch, \
            redis_server(args.redis_url) as redis_url, \
            sandbox_process(Path(scratch) / "marketplaces.toml"):
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        database_url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        env = {
            **os.environ, "PYTHONPATH": str(ROOT), "SYNDICATION_DATABASE_URL": database_url,
            "SYNDICATION_BROKER_URL": redis_url,
            "SYNDICATION_MARKETPLACES": str(Path(scratch) / "marketplaces.toml"),
            "SYNDICATION_OUTBOX": str(Path(scratch) / "outbox"),
            "SYNDICATION_CONFIRM_DELAY_MS": "3600000", "SYNDICATION_LOG_LEVEL": "ERROR",
        }
        settings = Settings.from_env(env)
        engine = make_engine(database_url)
        migrate(engine)
        ingested = time.perf_counter()
        done = ingest_document(engine, input_bytes(count))
        assert done.ok, done.errors[:3]
        ingest_seconds = time.perf_counter() - ingested
        engine.dispose()

        worker = None if args.no_worker else start_worker(env, args.threads)
        try:
            if worker is not None:
                wait_for_worker(redis_url, worker)
            runtime = Runtime.from_settings(settings)
            broker = start_queue(settings, runtime)
            args.batch_size = args.batch_size or batch_size_for(runtime.engine)
            from syndication.jobs.transfer import SCHEDULER
            cpu = time.process_time()
            started = time.perf_counter()
            summary = request_transfer(runtime, Scope("all"), SCHEDULER,
                                       batch_size=args.batch_size)
            left = Relay(runtime.engine, broker, name="bench").drain(60)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            worker_alive = worker is None or worker.poll() is None
            rows = fan_out_rows(runtime.engine, summary.request_id)
            floor_seconds = bare_floor(runtime.engine, rows, args.batch_size)
        finally:
            if worker is not None:
                stop_worker(worker)
        if left or pending(runtime.engine):
            print(f"error: {left} message(s) left in the outbox", file=sys.stderr)
            return 1
        if not worker_alive:
            print("error: the worker stopped during the fan-out", file=sys.stderr)
            return 1
        runtime.close()

    pairs = summary.jobs + summary.recorded
    if pairs != 3 * count or len(rows["status"]) != pairs:
        print(f"error: {pairs} pairs stored, {3 * count} expected", file=sys.stderr)
        return 1
    pairs_per_s = pairs / seconds
    floor_per_s = pairs / floor_seconds
    ratio = pairs_per_s / floor_per_s
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"store: {runtime.engine.dialect.name}; {count} listings ingested in "
          f"{ingest_seconds:.1f} s; batches of {args.batch_size} listings; "
          + ("no worker" if args.no_worker else
             f"one `syndication worker` ({args.threads} threads) consuming meanwhile"))
    print(f"fan-out: {pairs} pairs ({summary.jobs} jobs) in {seconds:.2f} s, "
          f"{pairs_per_s:.0f} pairs/s; CPU of the fan-out process {cpu:.2f} s "
          f"({cpu / pairs * 1e6:.0f} µs per pair)")
    print(f"bare-driver floor (executemany of the same rows): {floor_seconds:.2f} s, "
          f"{floor_per_s:.0f} pairs/s")
    print(f"ratio pairs/s ÷ floor pairs/s: {ratio:.3f}")
    report("fanout", ratio=round(ratio, 4), value=round(pairs_per_s, 1), unit="pairs/s",
           floor=round(floor_per_s, 1), floor_unit="bare-driver pairs/s", pairs=pairs,
           batch_size=args.batch_size, database=runtime.engine.dialect.name,
           worker=not args.no_worker, cpu_us_per_pair=round(cpu / pairs * 1e6, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
