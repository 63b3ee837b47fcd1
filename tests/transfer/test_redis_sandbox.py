"""Transfers through a real Redis broker to the sandbox marketplaces over loopback HTTP.

Nothing is faked: dramatiq's RedisBroker on the test Redis, a real store
(SQLite and PostgreSQL), the HTTP transports from a marketplaces file, the
sandbox's servers. Worker processes are real ``dramatiq worker`` processes
where a test kills one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import pytest
from factories import listing, office, user
from sqlalchemy import Engine
from transfer_helpers import ingest

from adapters.sandbox import Sandbox
from syndication.broker import in_process_worker
from syndication.cli.transfer import queue_request, start_queue
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.repository import get_statuses
from syndication.transfer import RequestOutcome, Scope, request_outcome, wait_for_request

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


def eventually(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class RedisSetup:
    """Sandbox + marketplaces file + settings for a Redis-backed transfer."""

    def __init__(self, database_url: str, redis_url: str, folder: Path) -> None:
        self.sandbox = Sandbox(publish_delay=0.2).start()
        self.marketplaces_file = self.sandbox.write_marketplaces_file(
            folder / "marketplaces.toml", read_timeout=10.0, max_attempts=2
        )
        self.settings = Settings(
            database_url=database_url,
            broker_url=redis_url,
            marketplaces_file=self.marketplaces_file,
            outbox=folder / "outbox",
            heartbeat_timeout_ms=2_000,
            max_retries=2,
            min_backoff_ms=100,
            confirm_delay_ms=300,
        )
        self.runtime = Runtime.from_settings(self.settings)
        self.engine: Engine = self.runtime.engine
        self.broker = start_queue(self.settings, self.runtime)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SYNDICATION_DATABASE_URL": self.settings.database_url,
            "SYNDICATION_BROKER_URL": self.settings.broker_url or "",
            "SYNDICATION_MARKETPLACES": str(self.marketplaces_file),
            "SYNDICATION_HEARTBEAT_MS": str(self.settings.heartbeat_timeout_ms),
            "SYNDICATION_CONFIRM_DELAY_MS": "300",
            "SYNDICATION_LOG_LEVEL": "WARNING",
        }

    def transfer(self, scope: Scope | None = None, timeout: float = 60) -> RequestOutcome:
        summary = queue_request(self.runtime, scope or Scope("all"))
        outcome = wait_for_request(self.engine, summary.request_id, timeout=timeout)
        assert outcome.finished, outcome
        return outcome

    def state(self, listing_id: str, marketplace: str) -> object:
        with session_scope(self.engine) as session:
            return get_statuses(session, listing_id).get(marketplace)

    def close(self) -> None:
        self.sandbox.stop()
        self.runtime.close()


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[RedisSetup]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = RedisSetup(url, redis_url, tmp_path)
    yield s
    s.close()


@pytest.fixture
def worker(setup: RedisSetup) -> Iterator[dramatiq.Worker]:
    with in_process_worker(setup.broker, threads=4) as w:
        yield w


def test_fan_out_statuses_unchanged_and_resend_over_redis(
    setup: RedisSetup, worker: dramatiq.Worker
) -> None:
    ingest(setup.engine, offices=[office()], users=[user(), user("U2", name="Per Berg")],
           listings=[listing("O1"), listing("O2"), listing("O3", broker_id="U2")])
    first = setup.transfer()
    assert first.counts == {"sent": 6, "not_selected": 3} or first.counts["published"] > 0
    hemnet = setup.sandbox["hemnet"]
    for lid in ("O1", "O2", "O3"):
        status = setup.state(lid, "hemnet")
        assert status.marketplace_id == hemnet.marketplace_id(lid)  # type: ignore[attr-defined]
        assert hemnet.creations[lid] == 1
    eventually(
        lambda: all(setup.state(lid, m).state == "published"  # type: ignore[attr-defined]
                    for lid in ("O1", "O2", "O3") for m in ("hemnet", "blocket")),
        what="publication",
    )

    calls = hemnet.call_count()
    second = setup.transfer()
    assert second.unchanged == 9 and hemnet.call_count() == calls

    ingest(setup.engine, users=[user(email="karin.lind@example.se")])
    setup.transfer()
    updates = hemnet.documents(action="update")
    assert sorted(d.listing_id for d in updates) == ["O1", "O2"]
    assert all(b"karin.lind@example.se" in d.document for d in updates)
    assert sum(hemnet.creations.values()) == 3


def test_deselect_and_withdraw_delete_on_the_sandbox(
    setup: RedisSetup, worker: dramatiq.Worker
) -> None:
    ingest(setup.engine, offices=[office()], users=[user()],
           listings=[listing("O1"), listing("O2")])
    setup.transfer()
    ingest(setup.engine, listings=[listing("O1", marketplaces=["blocket"]),
                                   listing("O2", state="withdrawn")])
    setup.transfer()
    hemnet = setup.sandbox["hemnet"]
    assert not hemnet.holds("O1") and not hemnet.holds("O2")
    assert hemnet.delete_reasons == {"O1": "deselected", "O2": "withdrawn"}
    assert setup.state("O1", "hemnet").state == "deleted"  # type: ignore[attr-defined]
    assert setup.state("O2", "blocket").state == "deleted"  # type: ignore[attr-defined]
    assert setup.state("O1", "blocket").state in ("sent", "published")  # type: ignore[attr-defined]


def test_a_message_delivered_twice_creates_one_listing(
    setup: RedisSetup, worker: dramatiq.Worker
) -> None:
    ingest(setup.engine, offices=[office(licence=["hemnet"])], users=[user()],
           listings=[listing("O1", marketplaces=["hemnet"])])
    from syndication.jobs.transfer import transfer_listing

    summary = queue_request(setup.runtime, Scope("object", "O1"))
    for _ in range(2):  # the same job delivered twice more, concurrently
        transfer_listing.send(listing_id="O1", marketplace="hemnet", request_id=summary.request_id)
    eventually(lambda: setup.state("O1", "hemnet").attempts == 3, what="three runs")
    wait_for_request(setup.engine, summary.request_id, timeout=30)
    assert setup.sandbox["hemnet"].creations["O1"] == 1
    assert setup.state("O1", "hemnet").state in ("sent", "published")  # type: ignore[attr-defined]


def test_transient_then_permanent_failures(setup: RedisSetup, worker: dramatiq.Worker) -> None:
    ingest(setup.engine, offices=[office()], users=[user()],
           listings=[listing("O1"), listing("O2")])
    setup.sandbox["blocket"].reject("O2", "Objektet saknar giltig kommunkod")
    setup.sandbox["hemnet"].faults.fail_next(3, status=503)  # two HTTP tries per job run
    outcome = setup.transfer()
    assert [(f.listing_id, f.marketplace) for f in outcome.failures] == [("O2", "blocket")]
    assert "kommunkod" in outcome.failures[0].error
    assert setup.sandbox["blocket"].call_count("O2") == 1
    assert setup.state("O1", "hemnet").state in ("sent", "published")  # type: ignore[attr-defined]
    assert setup.state("O1", "hemnet").attempts + setup.state("O2", "hemnet").attempts > 2  # type: ignore[attr-defined]


def _start_worker(setup: RedisSetup, log: Path, *command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command or [sys.executable, "-m", "dramatiq", "worker", "--processes", "1",
                    "--threads", "1"],
        cwd=ROOT,
        env=setup.env(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


@pytest.mark.slow
def test_a_worker_killed_mid_job_leaves_the_job_to_another(
    redis_url: str, tmp_path: Path
) -> None:
    setup = RedisSetup(f"sqlite:///{tmp_path / 'store.db'}", redis_url, tmp_path)
    try:
        ingest(setup.engine, offices=[office(licence=["hemnet"])], users=[user()],
               listings=[listing("O1", marketplaces=["hemnet"])])
        hemnet = setup.sandbox["hemnet"]
        hemnet.faults.hang_next(1, seconds=8)  # takes effect, answers late: the worker dies first
        summary = queue_request(setup.runtime, Scope("object", "O1"))
        log = tmp_path / "workers.log"
        first = _start_worker(setup, log)
        try:
            eventually(lambda: hemnet.creations["O1"] == 1, what="the first worker's delivery")
        finally:
            _stop(first, signal.SIGKILL)
        assert setup.state("O1", "hemnet").state == "queued"  # type: ignore[attr-defined]
        second = _start_worker(
            setup, log, sys.executable, "-m", "syndication", "worker", "--processes", "1",
            "--threads", "2",
        )
        try:
            outcome = wait_for_request(setup.engine, summary.request_id, timeout=90)
        finally:
            _stop(second, signal.SIGTERM)
        assert outcome.finished, log.read_text()[-3000:]
        status = setup.state("O1", "hemnet")
        assert status.state in ("sent", "published")  # type: ignore[attr-defined]
        assert status.attempts == 2  # type: ignore[attr-defined]
        assert hemnet.creations["O1"] == 1 and hemnet.replays >= 1
    finally:
        setup.close()


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "syndication", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-4000:]
        raise AssertionError(f"syndication {' '.join(args)} timed out; stderr: {tail!r}") from None


def test_transfer_wait_exit_status_in_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    migrate(engine)
    ingest(engine, offices=[office()], users=[user()],
           listings=[listing("O1"), listing("O2", images=[])])
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNDICATION_DATABASE_URL": url,
           "SYNDICATION_OUTBOX": str(tmp_path / "outbox"), "SYNDICATION_LOG_LEVEL": "WARNING",
           "SYNDICATION_MIN_BACKOFF_MS": "200"}
    env.pop("SYNDICATION_BROKER_URL", None)
    env.pop("SYNDICATION_MARKETPLACES", None)

    ok = _cli(env, "transfer", "--object", "O1", "--wait")
    assert ok.returncode == 0, ok.stderr
    assert "2 job(s) queued" in ok.stdout and "sent" in ok.stdout
    assert (tmp_path / "outbox" / "hemnet").is_dir()

    failing = _cli(env, "transfer", "--all", "--wait")
    assert failing.returncode == 1
    assert "failures:" in failing.stdout and "O2 on hemnet: Hemnet: images" in failing.stdout
    assert "unchanged" in failing.stdout
    assert "progress:" in failing.stderr

    unknown = _cli(env, "transfer", "--object", "NOPE")
    assert unknown.returncode == 2 and "error: listing 'NOPE'" in unknown.stderr


def test_transfer_with_redis_down_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    migrate(engine)
    ingest(engine, offices=[office()], users=[user()], listings=[listing("O1")])
    engine.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNDICATION_DATABASE_URL": url,
           "SYNDICATION_BROKER_URL": f"redis://127.0.0.1:{port}/0",
           "SYNDICATION_LOG_LEVEL": "ERROR"}
    result = _cli(env, "transfer", "--all")
    assert result.returncode == 2, result.stderr
    assert "error: cannot reach the broker" in result.stderr and "Traceback" not in result.stderr


def test_worker_command_needs_a_shared_broker(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SYNDICATION_BROKER_URL", None)
    result = _cli(env, "worker")
    assert result.returncode == 2 and "SYNDICATION_BROKER_URL" in result.stderr


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("SYNDICATION_BROKER_URL", "SYNDICATION_DATABASE_URL", "SYNDICATION_MARKETPLACES"):
        env.pop(name, None)
    began = time.monotonic()
    result = _cli(env, "demo", "--keep", str(tmp_path / "demo"), timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 60
    out = result.stdout
    assert "code-330 farm (Gård utan bruk) OBJ-GBG-1008 on Hemnet: published, HemnetID HN" in out
    assert "OBJ-GBG-1010  Hemnet" in out and "contact: Hemnet" in out
    assert "failures:" in out and "Traceback" not in result.stderr
    published = [line for line in out.splitlines() if " published " in line]
    assert len(published) > 20


@pytest.mark.slow
def test_redis_restarted_mid_transfer_loses_and_duplicates_nothing(
    own_redis: object, tmp_path: Path
) -> None:
    setup = RedisSetup(f"sqlite:///{tmp_path / 'store.db'}", own_redis.url, tmp_path)  # type: ignore[attr-defined]
    try:
        ingest(setup.engine, offices=[office()], users=[user()],
               listings=[listing(f"O{i}") for i in range(12)])
        for name in ("hemnet", "blocket"):
            setup.sandbox[name].faults.fail_fraction(0.2, seed=3, timeout_share=0.0)
        summary = queue_request(setup.runtime, Scope("all"))
        with in_process_worker(setup.broker, threads=4):
            eventually(lambda: setup.sandbox["hemnet"].call_count() >= 3, what="first deliveries")
            own_redis.restart()  # type: ignore[attr-defined]
            restarted_at = request_outcome(setup.engine, summary.request_id)
            outcome = wait_for_request(setup.engine, summary.request_id, timeout=120)
        assert restarted_at.done < restarted_at.total  # the restart came mid-transfer
        assert outcome.finished and not outcome.failures, outcome
        assert outcome.counts == {"published": 24, "not_selected": 12} or (
            outcome.counts["sent"] + outcome.counts["published"] == 24
        )
        for name in ("hemnet", "blocket"):
            creations = setup.sandbox[name].creations
            assert sorted(creations) == sorted(f"O{i}" for i in range(12))
            assert set(creations.values()) == {1}
    finally:
        setup.close()
