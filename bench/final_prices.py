"""Benchmark: the nightly final-price sync for N sold listings (default 100,000).

    python bench/final_prices.py                        # 100,000 listings, SQLite, sandbox HTTP
    python bench/final_prices.py --listings 20000 --database-url postgresql://…/db
    python bench/final_prices.py --quick                # 5,000 listings
    python bench/final_prices.py --latency-ms 30        # 20,000 listings, Hemnet answering in 30 ms

Generates N sold, consenting listings that Hemnet published before their sale in a
temporary SQLite database (or the empty PostgreSQL database ``--database-url`` names),
starts the sandbox marketplaces over HTTP on loopback in a process of their own
(``python -m adapters.sandbox``), and runs the sync as ``syndication final-prices``
does: the indexed selection, batches of ids through dramatiq's in-process broker to
worker threads, each document over HTTP to the sandbox Hemnet, outcomes recorded.
Then it runs again (nothing changed: nothing may be sent) and measures, in the same
run, two floors:

* ``select`` — the bare SELECT of the same listing rows, streamed (the database's share);
* ``deliveries`` — the same final-price documents, prebuilt, sent straight through
  the same HTTP transport's async twin on one event loop, as many at once as the sync
  sends
  (``--concurrency``, default ``SYNDICATION_FINAL_PRICE_CONCURRENCY``'s; the
  marketplace's share); half of them before the sync and half after, so that a
  machine whose load changes during the run colours the floor as it does the sync.

Beside the rates it prints the CPU time per listing of the sync's process and of
Hemnet's, which the load of a shared machine changes far less than the rates.

With ``--latency-ms`` (row ``final_prices_latency_<ms>ms``) Hemnet is
``bench/hemnet_standin.py`` instead: the sandbox Hemnet's answers, each given only
that many milliseconds after its request (20,000 listings by default, 3,000 with
``--quick``); the delivery floor is then measured against the same stand-in at the
same latency.

It prints listings per second for each and the ratios sync/floor (1.0 = as fast as
the floor alone). The last line is ``BENCH {json}`` for ``bench/run_all.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import factories  # noqa: E402
from _common import machine, report  # noqa: E402
from sqlalchemy import Engine, insert, select, text  # noqa: E402

from adapters.async_http import AsyncHttpTransport  # noqa: E402
from adapters.base import Delivery  # noqa: E402
from adapters.http import HttpTransport  # noqa: E402
from adapters.retry import RetryPolicy  # noqa: E402
from feeds.common import document_hash  # noqa: E402
from feeds.hemnet_final_price import build_final_price  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.records import Listing  # noqa: E402
from syndication.runtime import Runtime  # noqa: E402
from syndication.settings import Settings  # noqa: E402
from syndication.store import make_engine, migrate  # noqa: E402
from syndication.store.models import (  # noqa: E402
    ListingRow,
    OfficeRow,
    TransferEventRow,
    UserRow,
)
from syndication.transfer.keys import idempotency_key  # noqa: E402

CATEGORIES = ("villa", "bostadsratt", "fritidshus")
FLOOR_SAMPLE = 20_000


def sold(n: int, offices: int) -> Listing:
    """Listing ``n``: the factory's listing, sold with consent to send its final price, in
    office ``K{n % offices}`` and one of the three categories the final price goes for."""
    return factories.listing_record(
        f"FP{n:07d}", office_id=f"K{n % offices}", company_id=f"C{n % offices}",
        broker_id=f"U{n % offices}", category=CATEGORIES[n % 3], state="sold",
        marketplaces=("hemnet",), price=3_000_000 + n, final_price=3_100_000 + 1000 * (n % 900),
        contract_date=date(2026, 9, 1) + timedelta(days=n % 60), send_final_price=True,
    )


def generate(engine: Engine, count: int, offices: int = 50) -> None:
    """``count`` sold listings over ``offices`` offices, each published on Hemnet before
    its contract date; a tenth of the brokers belong to two companies."""
    published = datetime(2026, 6, 1, 9, tzinfo=UTC)
    offices_rows = [
        factories.columns(factories.office_record(
            f"K{o}", name=f"Kontor {o}", company_id=f"C{o}", licence=("hemnet",),
            category_defaults={}, final_price_enabled=True, hemnet_final_price_agreement=True))
        for o in range(offices)
    ]
    users_rows = [
        factories.columns(factories.user_record(
            f"U{o}", office_id=f"K{o}", name=f"Mäklare {o}", email=None,
            companies=(f"C{o}", f"C{o}b") if o % 10 == 0 else (f"C{o}",), main_company=f"C{o}",
            show_on_internet=True))
        for o in range(offices)
    ]
    with engine.begin() as conn:
        conn.execute(insert(OfficeRow.__table__),  # type: ignore[attr-defined]
                     [{**row, "updated_at": published} for row in offices_rows])
        conn.execute(insert(UserRow.__table__),  # type: ignore[attr-defined]
                     [{**row, "password_legacy": False, "updated_at": published}
                      for row in users_rows])
    for start in range(0, count, 10_000):
        chunk = range(start, min(count, start + 10_000))
        with engine.begin() as conn:
            conn.execute(insert(ListingRow.__table__), [  # type: ignore[attr-defined]
                {**factories.columns(sold(n, offices)), "updated_at": published} for n in chunk
            ])
            conn.execute(insert(TransferEventRow.__table__), [  # type: ignore[attr-defined]
                {"listing_id": f"FP{n:07d}", "marketplace": "hemnet", "state": "published",
                 "action": "create", "attempts": 1, "at": published}
                for n in chunk
            ])


def floor_select(engine: Engine) -> float:
    """Seconds to stream the same listing rows with a bare indexed SELECT."""
    query = select(*[c for c in ListingRow.__table__.columns]).where(  # type: ignore[attr-defined]
        ListingRow.send_final_price == True, ListingRow.state == "sold"  # noqa: E712
    )
    started = time.perf_counter()
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(query)
        for _rows in result.partitions():
            pass
    return time.perf_counter() - started


def floor_deliveries(url: str, count: int, threads: int, prefix: str = "FLOOR") -> float:
    """Seconds to send ``count`` prebuilt final-price documents, ``threads`` at once on one
    event loop through the transport's async twin (as the sync sends), over as many
    kept-alive connections, for listings ``<prefix>0000000`` on."""
    transport = HttpTransport("hemnet", url, policy=RetryPolicy.standard(max_attempts=3),
                              pool_size=threads)
    deliveries = []
    for n in range(count):
        listing = factories.listing_record(f"{prefix}{n:07d}", office_id="K0", state="sold",
                                           final_price=3_000_000 + n,
                                           contract_date=date(2026, 9, 1))
        document = build_final_price(listing)
        deliveries.append(Delivery("hemnet", listing.id, "K0", "final_price", document,
                                   idempotency_key(listing.id, "hemnet", "final_price",
                                                   document_hash(document))))
    twin = AsyncHttpTransport.like(transport, max_connections=threads)

    async def send_all() -> float:
        bound = asyncio.Semaphore(threads)

        async def one(delivery: Delivery) -> None:
            async with bound:
                await twin.send(delivery)

        started = time.perf_counter()
        await asyncio.gather(*(one(delivery) for delivery in deliveries))
        elapsed = time.perf_counter() - started
        await twin.aclose()
        return elapsed

    elapsed = asyncio.run(send_all())
    transport.close()
    return elapsed


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, from the kernel."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SANDBOX = """
import sys
from adapters.sandbox.__main__ import main
sys.exit(main(["--publish-delay", "0"]))
"""
"""The sandbox marketplaces in a process of their own (they set TCP_NODELAY on their
sockets, so kept-alive answers are not held back by Nagle's algorithm)."""


def start_sandbox(latency_ms: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    """Hemnet in a process of its own: the sandbox, or with a latency the stand-in."""
    command = [sys.executable, "-c", SANDBOX]
    if latency_ms > 0:
        command = [sys.executable, str(ROOT / "bench" / "hemnet_standin.py"),
                   "--latency-ms", str(latency_ms)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("hemnet"):
            return process, line.split()[1]
    raise RuntimeError("the sandbox did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listings", type=int,
                        help="sold listings (default 100,000; 20,000 with --latency-ms)")
    parser.add_argument("--quick", action="store_true",
                        help="5,000 listings (3,000 with --latency-ms)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=Settings().final_price_concurrency,
                        help="final-price deliveries in flight at once (default: the setting's)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="Hemnet answers this late (the stand-in; default 0: the sandbox)")
    args = parser.parse_args(argv)
    latency = args.latency_ms > 0
    if args.listings is not None:
        count = args.listings
    elif args.quick:
        count = 3_000 if latency else 5_000
    else:
        count = 20_000 if latency else 100_000
    name = f"final_prices_latency_{args.latency_ms:g}ms" if latency else "final_prices"
    configure("WARNING")

    from syndication.broker import setup_broker
    from syndication.cli.final_prices import run_sync

    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)
        sandbox, hemnet_url = start_sandbox(args.latency_ms)
        try:
            started = time.perf_counter()
            generate(engine, count)
            print(f"generated {count} sold listings in {time.perf_counter() - started:.1f} s "
                  f"({engine.dialect.name})")
            select_seconds = floor_select(engine)
            sample = min(count, FLOOR_SAMPLE)
            delivery_seconds = floor_deliveries(hemnet_url, sample // 2, args.concurrency)

            transport = HttpTransport("hemnet", hemnet_url,
                                      policy=RetryPolicy.standard(max_attempts=3),
                                      pool_size=args.threads + args.concurrency)
            settings = Settings(database_url=url, worker_threads=args.threads,
                                final_price_concurrency=args.concurrency)
            runtime = Runtime(settings=settings, engine=engine, transports={"hemnet": transport})
            broker = setup_broker(settings, runtime)
            import dramatiq

            from syndication.concurrent.worker import settle_heap
            from syndication.jobs.final_prices import QUEUE, enqueue_batch

            worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=args.threads,
                                     worker_timeout=50)
            worker.start()
            settle_heap()  # as `syndication final-prices` does in a process of its own
            try:
                started = time.perf_counter()
                cpu_started = (time.process_time(), process_cpu(sandbox.pid))
                first = run_sync(runtime, enqueue_batch, batch_size=args.batch_size,
                                 show_progress=sys.stderr.isatty())
                sync_seconds = time.perf_counter() - started
                sync_cpu = time.process_time() - cpu_started[0]
                hemnet_cpu = process_cpu(sandbox.pid) - cpu_started[1]
                started = time.perf_counter()
                second = run_sync(runtime, enqueue_batch, batch_size=args.batch_size,
                                  show_progress=False)
                again_seconds = time.perf_counter() - started
            finally:
                worker.stop()
                runtime.close()
            delivery_seconds += floor_deliveries(hemnet_url, sample - sample // 2,
                                                 args.concurrency, prefix="FLOOR-AFTER")
            with engine.connect() as conn:
                states = dict(conn.execute(text(
                    "select state, count(*) from final_price_sync group by state")).all())
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)
            engine.dispose()

    sent = first["counts"]["sent"]
    if sent != count or first["failed"] or second["counts"]["sent"] or states != {"sent": count}:
        print(f"error: expected {count} sent once, got {first['counts']}, then "
              f"{second['counts']}; stored {states}", file=sys.stderr)
        return 1
    sync_rate = count / sync_seconds
    select_rate = count / select_seconds
    delivery_rate = sample / delivery_seconds
    facts = machine()
    where = (f"the Hemnet stand-in answering after {args.latency_ms:g} ms" if latency
             else "sandbox Hemnet")
    print(f"machine: {facts['cpu']}, {facts['cores']} cores, "
          f"load average {os.getloadavg()[0]:.1f}; database {engine.dialect.name}; "
          f"transport: {where} over HTTP on loopback (own process)")
    print(f"sync:           {count} listings in {sync_seconds:.1f} s = {sync_rate:,.0f} listings/s")
    print(f"CPU per listing: {sync_cpu / count * 1000:.2f} ms in the sync's process, "
          f"{hemnet_cpu / count * 1000:.2f} ms in Hemnet's (the CPU alone: at least "
          f"{(sync_cpu + hemnet_cpu) / (facts['cores'] or 1):.0f} s on {facts['cores']} "
          f"idle cores)")
    print(f"second run:     nothing to send, {count} judged in {again_seconds:.1f} s "
          f"= {count / again_seconds:,.0f} listings/s")
    print(f"floor select:   {select_rate:,.0f} rows/s (bare indexed SELECT of the same rows)")
    print(f"floor delivery: {delivery_rate:,.0f} documents/s ({sample} prebuilt documents, "
          f"{args.concurrency} at once on one event loop, same transport)")
    print(f"ratio sync/deliveries: {sync_rate / delivery_rate:.2f}   "
          f"ratio sync/select: {sync_rate / select_rate:.4f}")
    report(
        name,
        ratio=round(sync_rate / delivery_rate, 3),
        value=round(sync_rate, 1),
        unit="listings/s",
        floor=round(delivery_rate, 1),
        floor_unit="bare HTTP deliveries/s",
        ratio_select=round(sync_rate / select_rate, 5),
        select_rate=round(select_rate, 1),
        second_run_rate=round(count / again_seconds, 1),
        listings=count,
        seconds=round(sync_seconds, 1),
        cpu_ms_per_listing=round(sync_cpu / count * 1000, 3),
        hemnet_cpu_ms_per_listing=round(hemnet_cpu / count * 1000, 3),
        database=engine.dialect.name,
        transport="standin-http" if latency else "sandbox-http",
        latency_ms=args.latency_ms,
        concurrency=args.concurrency,
        threads=args.threads,
        load_average=round(os.getloadavg()[0], 1),
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
