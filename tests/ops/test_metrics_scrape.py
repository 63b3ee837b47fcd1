"""A known transfer through a real ``syndication worker`` process, then both expositions
scraped over HTTP: the worker's (dramatiq's exposition server, summed over its
processes) and the HTTP service's ``/metrics`` (the store and Redis at scrape time).

Nothing is faked: the test's own Redis, a SQLite store, the sandbox marketplaces on
loopback, the worker as ``python -m syndication worker`` with ``--metrics-port`` and
``--health-port``, the service on uvicorn.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import listing, office, user
from http_service import serve_app
from ops_helpers import eventually, scrape, status_of, total, value
from sqlmodel import select

from adapters.sandbox import Sandbox
from syndication.app import create_app
from syndication.cli.transfer import queue_request, start_queue
from syndication.ingest import ingest_document
from syndication.runtime import Runtime
from syndication.service import ServiceContext
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import OutboxRow
from syndication.store.repository import get_statuses
from syndication.transfer import Scope, wait_for_request

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(publish_delay=0.2).start()
    yield box
    box.stop()


def test_a_known_transfer_in_both_expositions(tmp_path: Path, own_redis: object,
                                              sandbox: Sandbox) -> None:
    redis_url = own_redis.url  # type: ignore[attr-defined]
    store = f"sqlite:///{tmp_path / 'store.db'}"
    marketplaces = sandbox.write_marketplaces_file(tmp_path / "marketplaces.toml",
                                                   read_timeout=10.0, max_attempts=2)
    settings = Settings(database_url=store, broker_url=redis_url, marketplaces_file=marketplaces,
                        outbox=tmp_path / "outbox", confirm_delay_ms=300)
    runtime = Runtime.from_settings(settings)
    start_queue(settings, runtime)
    import json

    document = {"offices": [office(licence=["hemnet"])], "users": [user()],
                "listings": [listing("O1", marketplaces=["hemnet"]),
                             listing("O2", marketplaces=["hemnet"], images=[])]}
    assert ingest_document(runtime.engine, json.dumps(document).encode()).ok
    summary = queue_request(runtime, Scope("all"))

    metrics_port, health_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path),
           "SYNDICATION_DATABASE_URL": store, "SYNDICATION_BROKER_URL": redis_url,
           "SYNDICATION_MARKETPLACES": str(marketplaces), "SYNDICATION_CONFIRM_DELAY_MS": "300",
           "SYNDICATION_LOG_LEVEL": "WARNING"}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "syndication", "worker", "--processes", "2", "--threads", "2",
         "--metrics-port", str(metrics_port), "--health-port", str(health_port)],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    context = ServiceContext(settings=settings, engine=runtime.engine, contacts={},
                             secret_key="k" * 64)
    try:
        outcome = wait_for_request(runtime.engine, summary.request_id, timeout=90)
        assert outcome.finished, log.read_text()[-3000:]

        def settled() -> bool:
            with session_scope(runtime.engine) as session:
                states = [get_statuses(session, lid)["hemnet"].state for lid in ("O1", "O2")]
            return states == ["published", "failed"]

        eventually(settled, what="O1 published, O2 failed")
        ready = f"http://127.0.0.1:{health_port}/readyz"
        eventually(lambda: status_of(ready)[0] == 200, what="the worker's readiness")

        hemnet = sandbox["hemnet"]
        worker_url = f"http://127.0.0.1:{metrics_port}/metrics"
        samples = eventually(lambda: _quiet(scrape(worker_url)), what="the worker idle")
        started = value(samples, "syndication_messages_total", actor="transfer_listing",
                        outcome="started")
        assert started == 2
        assert value(samples, "syndication_messages_total", actor="transfer_listing",
                     outcome="succeeded") == 2
        assert value(samples, "dramatiq_messages_total", queue_name="transfers",
                     actor_name="transfer_listing") == 2
        assert value(samples, "syndication_job_duration_seconds_count", marketplace="hemnet",
                     action="create") == 1
        assert value(samples, "syndication_job_duration_seconds_count", marketplace="hemnet",
                     action="none") == 1
        confirmations = total(samples, "syndication_messages_total",
                              actor="confirm_publication", outcome="succeeded")
        assert confirmations >= 1
        assert value(samples, "syndication_job_duration_seconds_count", marketplace="hemnet",
                     action="confirm") == confirmations
        assert total(samples, "syndication_http_calls_total", marketplace="hemnet") == \
            hemnet.call_count() >= 2
        statuses = {dict(labels)["status"] for name, labels in samples
                    if name == "syndication_http_calls_total"
                    and ("marketplace", "hemnet") in labels}
        assert statuses and all(s.startswith("2") for s in statuses), statuses

        with serve_app(create_app(context)) as served:
            service = scrape(served.url("/metrics"))
            assert value(service, "syndication_store_up") == 1
            assert value(service, "syndication_redis_up") == 1
            assert value(service, "syndication_pairs", marketplace="hemnet",
                         state="published") == 1
            assert value(service, "syndication_pairs", marketplace="hemnet", state="failed") == 1
            assert value(service, "syndication_failed_pairs", marketplace="hemnet") == 1
            assert value(service, "syndication_failed_pairs", marketplace="blocket") == 0
            assert value(service, "syndication_oldest_queued_pair_age_seconds") == 0
            # a row staged by the last job (e.g. its publication check) is in the outbox
            # until its writer or a relay has sent and deleted it: the backlog drains
            drained = eventually(
                lambda: value(scrape(served.url("/metrics")), "syndication_outbox_backlog") == 0,
                timeout=30, what=f"an empty outbox (rows: {outbox_rows(runtime.engine)})")
            assert drained
            assert value(service, "syndication_queue_depth", queue="transfers") == 0
            assert value(service, "syndication_circuit_state", marketplace="hemnet",
                         state="closed") == 1
            assert value(service, "syndication_circuit_state", marketplace="hemnet",
                         state="open") == 0

            own_redis.stop()  # type: ignore[attr-defined]
            code, body = eventually(lambda: _refused(ready), what="the worker not ready")
            assert code == 503 and "redis" in body
            assert status_of(f"http://127.0.0.1:{health_port}/healthz")[0] == 200
            assert value(scrape(served.url("/metrics")), "syndication_redis_up") == 0
            own_redis.start()  # type: ignore[attr-defined]
            eventually(lambda: status_of(ready)[0] == 200, what="the worker ready again")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        runtime.close()


def _quiet(samples: dict) -> dict | None:  # type: ignore[type-arg]
    """``samples`` once no message is in progress and every started one has ended."""
    inprogress = total(samples, "dramatiq_messages_inprogress")
    started = total(samples, "syndication_messages_total", outcome="started")
    ended = sum(total(samples, "syndication_messages_total", outcome=o)
                for o in ("succeeded", "failed", "retried", "skipped"))
    return samples if inprogress == 0 and started == ended and started > 0 else None


def _refused(url: str) -> tuple[int, str] | None:
    code, body = status_of(url)
    return (code, body) if code == 503 else None


def outbox_rows(engine: Any) -> list[tuple[Any, ...]]:
    """The outbox's rows as (actor, claimed by, claimed until, attempts, error)."""
    with session_scope(engine) as session:
        return [(row.actor_name, row.claimed_by, row.claimed_until, row.relay_attempts,
                 row.last_error) for row in session.exec(select(OutboxRow))]
