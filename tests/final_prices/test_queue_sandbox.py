"""The final-price sync end to end: batches through dramatiq (``setup_broker``, real worker
threads), documents over real HTTP to the sandbox Hemnet, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dramatiq
import factories
import pytest
import structlog
from fp_support import CONTRACT, seed, update_listing
from sqlalchemy import Engine
from tenacity import stop_after_attempt, wait_fixed

from adapters.http import HttpTransport
from adapters.retry import RetryPolicy
from adapters.sandbox import Sandbox
from feeds.hemnet_final_price import build_final_price
from syndication import final_prices
from syndication.broker import setup_broker
from syndication.cli import main
from syndication.cli.final_prices import run_sync
from syndication.runtime import Runtime
from syndication.store import make_engine, migrate


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(["hemnet"]) as running:
        yield running


def http(sandbox: Sandbox, attempts: int = 3) -> HttpTransport:
    policy = RetryPolicy(stop=stop_after_attempt(attempts), wait=wait_fixed(0))
    return HttpTransport("hemnet", sandbox.url("hemnet"), policy=policy, read_timeout=5)


@pytest.fixture
def queued(make_runtime: Any) -> Iterator[Any]:
    """``start(engine, transport)`` → a runtime whose batches run on a dramatiq worker."""
    workers: list[dramatiq.Worker] = []

    def start(engine: Engine, transport: HttpTransport, broker_url: str | None = None) -> Runtime:
        runtime = make_runtime(engine, transport)
        if broker_url:
            runtime.settings = replace(runtime.settings, broker_url=broker_url)
        broker = setup_broker(runtime.settings, runtime)
        from syndication.jobs.final_prices import QUEUE

        worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=4, worker_timeout=50)
        worker.start()
        workers.append(worker)
        return runtime

    yield start
    for worker in workers:
        worker.stop()


def sync(runtime: Runtime) -> dict[str, Any]:
    from syndication.jobs.final_prices import enqueue_batch

    return run_sync(runtime, enqueue_batch, timeout=60, batch_size=7, show_progress=False)


def listed(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(e["listing_id"] for e in entries)


def test_prices_reach_hemnet_once_changes_resend_and_withdrawals_retract(
    engine: Engine, sandbox: Sandbox, queued: Any
) -> None:
    names = [f"S{i:02}" for i in range(30)]
    seed(engine, [{"id": name} for name in names])
    hemnet = sandbox["hemnet"]
    runtime = queued(engine, http(sandbox))

    assert listed(sync(runtime)["sent"]) == names
    listing = factories.listing_record("S00", state="sold", final_price=4_250_000,
                                       contract_date=CONTRACT)
    assert hemnet.final_price("S00") == build_final_price(listing)
    assert len(hemnet.documents("final_price")) == 30

    calls = hemnet.call_count()
    assert sync(runtime)["sent"] == [] and hemnet.call_count() == calls

    update_listing(engine, "S01", final_price=5_000_000)
    update_listing(engine, "S02", send_final_price=False)
    third = sync(runtime)
    assert [(e["listing_id"], e["action"]) for e in sorted(third["sent"], key=str)] == [
        ("S01", "resend"), ("S02", "retract")
    ]
    assert b"5000000" in (hemnet.final_price("S01") or b"")
    assert hemnet.final_price("S02") is None
    assert len(hemnet.documents("final_price_retraction", "S02")) == 1

    update_listing(engine, "S01", final_price=4_250_000)
    update_listing(engine, "S02", send_final_price=True)
    back = sync(runtime)
    assert [(e["listing_id"], e["action"]) for e in sorted(back["sent"], key=str)] == [
        ("S01", "resend"), ("S02", "send")
    ]
    for name in ("S01", "S02"):
        assert hemnet.final_price(name) == build_final_price(replace(listing, id=name))


def test_a_retraction_hemnet_did_not_know_is_retracted_with_the_note(
    sqlite_engine: Engine, sandbox: Sandbox, queued: Any
) -> None:
    from sqlalchemy import select

    from syndication.store import session_scope
    from syndication.store.models import FinalPriceRow, TransferEventRow
    from syndication.transfer import NOT_KNOWN_NOTE

    seed(sqlite_engine, [{"id": "S01"}, {"id": "S02"}])
    hemnet = sandbox["hemnet"]
    runtime = queued(sqlite_engine, http(sandbox))
    assert listed(sync(runtime)["sent"]) == ["S01", "S02"]
    update_listing(sqlite_engine, "S01", send_final_price=False)
    update_listing(sqlite_engine, "S02", send_final_price=False)
    hemnet.faults.fail_next(1, status=404)
    assert listed(sync(runtime)["sent"]) == ["S01", "S02"]
    with session_scope(sqlite_engine) as session:
        stored = {r.listing_id: r for r in session.scalars(select(FinalPriceRow))}
        events = list(session.scalars(select(TransferEventRow).order_by(TransferEventRow.id)))
        assert {r.state for r in stored.values()} == {"retracted"}
        noted = [lid for lid, r in stored.items() if r.error == NOT_KNOWN_NOTE]
        assert len(noted) == 1 and all(stored[lid].error is None for lid in stored
                                       if lid not in noted)
        assert hemnet.final_price(noted[0]) is not None, "Hemnet still holds the price"
        last = [e for e in events if e.listing_id == noted[0]][-1]
        assert (last.state, last.error) == ("deleted", NOT_KNOWN_NOTE)


@pytest.mark.redis
def test_batches_through_redis(
    sqlite_engine: Engine, sandbox: Sandbox, queued: Any, redis_url: str
) -> None:
    names = [f"R{i:02}" for i in range(20)]
    seed(sqlite_engine, [{"id": name} for name in names])
    runtime = queued(sqlite_engine, http(sandbox), broker_url=redis_url)
    assert listed(sync(runtime)["sent"]) == names
    assert sync(runtime)["sent"] == []
    assert len(sandbox["hemnet"].documents("final_price")) == 20


def test_a_hemnet_failure_mid_sync_is_finished_by_the_next_run_without_double_prices(
    engine: Engine, sandbox: Sandbox, queued: Any
) -> None:
    names = [f"F{i:02}" for i in range(40)]
    seed(engine, [{"id": name} for name in names])
    hemnet = sandbox["hemnet"]
    runtime = queued(engine, http(sandbox, attempts=1))
    hemnet.faults.fail_fraction(0.3, seed=7, statuses=(503,))

    first = sync(runtime)
    assert first["failed"], "the fault plan failed nobody"
    assert all("503" in entry["error"] for entry in first["failed"])
    assert len(first["sent"]) + len(first["failed"]) == 40

    hemnet.faults.clear()
    second = sync(runtime)
    assert listed(second["sent"]) == listed(first["failed"]) and second["failed"] == []
    for name in names:
        assert len(hemnet.documents("final_price", name)) == 1, name
        assert hemnet.final_price(name) is not None


def test_a_run_killed_after_sending_is_finished_by_replays_not_new_prices(
    engine: Engine, sandbox: Sandbox, queued: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(engine, [{"id": f"K{i}"} for i in range(5)])
    hemnet = sandbox["hemnet"]
    runtime = queued(engine, http(sandbox))

    def killed(*_args: Any) -> None:
        raise KeyboardInterrupt("worker killed between send and record")

    with monkeypatch.context() as patch:
        patch.setattr(final_prices, "_record_after", killed)
        with pytest.raises(KeyboardInterrupt):
            final_prices.process_batch(runtime, [f"K{i}" for i in range(5)], "dead-run")
    assert len(hemnet.documents("final_price")) == 5

    assert listed(sync(runtime)["sent"]) == [f"K{i}" for i in range(5)]
    assert len(hemnet.documents("final_price")) == 5 and hemnet.replays == 5


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``main()`` points structlog at this test's captured stderr; undo that afterwards."""
    yield
    structlog.reset_defaults()


def cli_store(tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
              listings: list[dict[str, Any]]) -> str:
    """A migrated SQLite store of these sold listings, and the environment that points
    ``syndication final-prices`` at it and at the sandbox Hemnet; returns its URL."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    migrate(engine)
    seed(engine, listings)
    engine.dispose()
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", url)
    monkeypatch.setenv("SYNDICATION_MARKETPLACES",
                       str(sandbox.write_marketplaces_file(tmp_path / "mp.toml")))
    monkeypatch.delenv("SYNDICATION_BROKER_URL", raising=False)
    return url


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning")
def test_the_cli_reports_json_and_dry_runs(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = cli_store(tmp_path, sandbox, monkeypatch,
                    [{"id": "A"}, {"id": "B"}, {"id": "T", "category": "tomt"}])

    assert main(["final-prices", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "would send 2, skipped 1, failed 0" in text and "category 'tomt'" in text
    assert sandbox["hemnet"].call_count() == 0

    assert main(["final-prices", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"sent": 2, "skipped": 1, "failed": 0}
    assert sandbox["hemnet"].final_price("A") is not None

    sandbox["hemnet"].reject("B", "price out of range")
    engine = make_engine(url)
    update_listing(engine, "B", final_price=1)
    engine.dispose()
    assert main(["final-prices"]) == 1
    text = capsys.readouterr().out
    assert "sent 0, skipped 2, failed 1" in text and "price out of range" in text


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning")
def test_the_command_tunes_the_collector_only_of_a_process_of_its_own(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As the console script the sync settles its heap once its worker threads run
    (``settle_heap``, as a worker process does); called with ``argv`` from a process
    of other work (this test) it leaves the garbage collector as it is."""
    import syndication.concurrent.worker as concurrent_worker

    cli_store(tmp_path, sandbox, monkeypatch, [{"id": "A"}, {"id": "B"}])
    settled: list[int] = []
    monkeypatch.setattr(concurrent_worker, "settle_heap",
                        lambda: settled.append(threading.active_count()))

    assert main(["final-prices", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["sent"] == 2
    assert settled == []

    monkeypatch.setattr("sys.argv", ["syndication", "final-prices", "--json"])
    assert main() == 0
    assert json.loads(capsys.readouterr().out)["counts"]["sent"] == 0
    assert len(settled) == 1
    assert settled[0] > 1, "settled before the worker threads were started"
