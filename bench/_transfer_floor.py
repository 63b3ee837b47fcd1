"""The floor of ``bench/transfer.py``: a dramatiq worker doing a transfer job's bare I/O.

    python bench/_transfer_floor.py --redis-url URL --database-url URL --threads N \\
        --marketplaces-file FILE --documents DIR

Run by ``bench/transfer.py`` as a process of its own, like the real worker it is
compared with: a dramatiq worker with ``--threads`` threads on the same Redis
broker, declaring two actors:

* ``bench_noop`` does nothing (the old floor: the queue's own speed);
* ``bench_floor`` does what no transfer job can avoid, with nothing around it:
  one kept-alive HTTP ``PUT`` of the pair's prebuilt document (from
  ``--documents``) to the sandbox, then the job's two write transactions on the
  bare driver (``sqlite3`` or ``psycopg``): a ``job_start`` row inserted, then
  one status row updated, one history row inserted and the ``job_start`` row
  deleted.

Each message carries the size of its batch; when a batch is done the process
prints ``done <actor> <size>`` on stdout, which the benchmark waits for. It
prints ``ready`` once its worker runs, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import threading
import tomllib
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import requests
from dramatiq.brokers.redis import RedisBroker

XML = "application/xml; charset=utf-8"


class BareStore:
    """One bare-driver connection per thread; the job's two write transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.local = threading.local()
        self.sqlite = url.startswith("sqlite")
        self.mark = "?" if self.sqlite else "%s"

    def _conn(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.sqlite:
                conn = sqlite3.connect(self.url.split("///", 1)[1], timeout=30,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            else:
                import psycopg

                conn = psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"))
            self.local.conn = conn
        return conn

    def _sql(self, text: str) -> str:
        return text.replace("?", self.mark)

    def two_transactions(self, listing_id: str, marketplace: str, message_id: str) -> None:
        conn = self._conn()
        now = datetime.now(UTC).replace(tzinfo=None)
        cur = conn.cursor()
        cur.execute(self._sql(
            "INSERT INTO job_start (message_id, listing_id, marketplace, request_id, worker, "
            "broker_id, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            + ("" if self.sqlite else " RETURNING id")),
            (message_id, listing_id, marketplace, "floor", "bench-floor", None, now))
        start_id = cur.lastrowid if self.sqlite else cur.fetchone()[0]
        conn.commit()
        cur.execute(self._sql(
            "UPDATE transfer_status SET state = ?, attempts = attempts + 1, at = ?, "
            "updated_at = ? WHERE listing_id = ? AND marketplace = ?"),
            ("published", now, now, listing_id, marketplace))
        cur.execute(self._sql(
            "INSERT INTO transfer_event (listing_id, marketplace, state, action, marketplace_id, "
            "error, attempts, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (listing_id, marketplace, "published", "update", None, None, 1, "floor", now))
        cur.execute(self._sql("DELETE FROM job_start WHERE id = ?"), (start_id,))
        conn.commit()
        cur.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--marketplaces-file", type=Path, required=True)
    parser.add_argument("--documents", type=Path, required=True)
    args = parser.parse_args(argv)

    config = tomllib.loads(args.marketplaces_file.read_text(encoding="utf-8"))
    urls = {name: entry["url"].rstrip("/") for name, entry in config["marketplaces"].items()}
    documents = {path.stem: path.read_bytes() for path in args.documents.glob("*.xml")}
    store = BareStore(args.database_url)
    sessions = threading.local()
    done: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()

    def finished(actor: str, total: int) -> None:
        with lock:
            done[(actor, total)] += 1
            if done[(actor, total)] == total:
                del done[(actor, total)]
                print(f"done {actor} {total}", flush=True)

    broker = RedisBroker(url=args.redis_url)
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name="bench-noop", max_retries=0)
    def bench_noop(total: int) -> None:
        finished("bench_noop", total)

    @dramatiq.actor(queue_name="bench-floor", max_retries=0)
    def bench_floor(listing_id: str, marketplace: str, office_id: str, total: int) -> None:
        session = getattr(sessions, "session", None)
        if session is None:
            session = sessions.session = requests.Session()
        answer = session.put(
            f"{urls[marketplace]}/listings/{listing_id}",
            data=documents[f"{listing_id}.{marketplace}"],
            headers={"Idempotency-Key": uuid.uuid4().hex, "Content-Type": XML,
                     "X-Office-Id": office_id},
        )
        answer.content  # noqa: B018 - the answer is read whole, as the transport does
        if not 200 <= answer.status_code < 300:
            raise RuntimeError(f"the sandbox answered {answer.status_code} for {listing_id}")
        store.two_transactions(listing_id, marketplace, uuid.uuid4().hex)
        finished("bench_floor", total)

    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=100)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    print("ready", flush=True)
    while not stop.wait(0.5):
        pass
    worker.stop()
    broker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
