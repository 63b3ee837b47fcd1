"""The floor of ``bench/latency.py``: a concurrent worker doing a transfer job's bare I/O.

    python bench/_latency_floor.py --redis-url URL --database-url URL --threads N \\
        --concurrency C --marketplaces-file FILE --documents DIR

Run by ``bench/latency.py`` as a process of its own, like the worker it is compared
with: :class:`~syndication.concurrent.ConcurrentWorker` with the same threads and the
same ``--concurrency`` on the same Redis broker, declaring one ``async def`` actor,
``bench_latency_floor``: one message, one kept-alive ``PUT`` of the pair's prebuilt
document to the sandbox (whose latency is the run's) on one shared
``aiohttp.ClientSession`` (the async transport's client), then the job's two write
transactions on the bare driver on a thread (``bench/_transfer_floor.py``'s
:class:`BareStore`). So the floor keeps as many calls in flight as the worker may,
and does nothing a transfer could skip.

Each message carries the size of its batch; when a batch is done the process
prints ``done bench_latency_floor <size>``. It prints ``ready`` once its worker
runs, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import tomllib
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import aiohttp  # noqa: E402
import dramatiq  # noqa: E402
from _transfer_floor import XML, BareStore  # noqa: E402
from dramatiq.brokers.redis import RedisBroker  # noqa: E402

from syndication.concurrent import ConcurrentWorker  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--marketplaces-file", type=Path, required=True)
    parser.add_argument("--documents", type=Path, required=True)
    args = parser.parse_args(argv)

    config = tomllib.loads(args.marketplaces_file.read_text(encoding="utf-8"))
    urls = {name: entry["url"].rstrip("/") for name, entry in config["marketplaces"].items()}
    documents = {path.stem: path.read_bytes() for path in args.documents.glob("*.xml")}
    store = BareStore(args.database_url)
    clients: dict[str, aiohttp.ClientSession] = {}
    done: Counter[int] = Counter()
    lock = threading.Lock()

    def finished(total: int) -> None:
        with lock:
            done[total] += 1
            if done[total] == total:
                del done[total]
                print(f"done bench_latency_floor {total}", flush=True)

    broker = RedisBroker(url=args.redis_url)
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name="bench-latency-floor", max_retries=0)
    async def bench_latency_floor(
        listing_id: str, marketplace: str, office_id: str, total: int
    ) -> None:
        if "http" not in clients:
            clients["http"] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=args.concurrency),
                timeout=aiohttp.ClientTimeout(total=60))
        async with clients["http"].put(
            f"{urls[marketplace]}/listings/{listing_id}",
            data=documents[f"{listing_id}.{marketplace}"],
            headers={"Idempotency-Key": uuid.uuid4().hex, "Content-Type": XML,
                     "X-Office-Id": office_id},
        ) as answer:
            await answer.read()
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"the sandbox answered {answer.status} for {listing_id}")
        await asyncio.to_thread(store.two_transactions, listing_id, marketplace,
                                uuid.uuid4().hex)
        finished(total)

    worker = ConcurrentWorker(broker, worker_threads=args.threads, worker_timeout=100,
                              concurrency=args.concurrency)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    print("ready", flush=True)
    while not stop.wait(0.5):
        pass
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
