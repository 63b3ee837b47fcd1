"""The schedule: slots in local time, APScheduler triggers, one run per slot however many
schedulers race for it (SQLite and PostgreSQL), and the nightly message running the sync."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from fp_support import seed
from sqlalchemy import Engine, select

from adapters.sandbox import Sandbox
from syndication.broker import setup_broker
from syndication.cli import main
from syndication.errors import ConfigurationError
from syndication.runtime import Runtime
from syndication.scheduling import FINAL_PRICE_ACTOR, PHOTOS_ACTOR, Schedule, claim_slot
from syndication.settings import Settings
from syndication.store import make_engine, migrate, session_scope
from syndication.store.models import ScheduleSlotRow

STOCKHOLM_NIGHT = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 02:00 CET


class Sent:
    """A thread-safe record of what the schedule enqueued."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, actor: str, kwargs: dict[str, Any]) -> None:
        with self.lock:
            self.messages.append((actor, kwargs))


def schedule(engine: Engine, enqueue: Any = None, now: datetime = STOCKHOLM_NIGHT,
             **settings: Any) -> Schedule:
    return Schedule(Settings(**settings), engine, enqueue=enqueue, clock=lambda: now)


def test_slots_are_local_dates_and_floored_intervals(sqlite_engine: Engine) -> None:
    plan = schedule(sqlite_engine, photos_interval_minutes=15)
    assert plan.final_price_slot(datetime(2026, 11, 23, 23, 30, tzinfo=UTC)) == "2026-11-24"
    assert plan.final_price_slot(datetime(2026, 7, 1, 22, 30, tzinfo=UTC)) == "2026-07-02"
    assert plan.photo_slot(datetime(2026, 11, 24, 1, 29, 59, tzinfo=UTC)) == "2026-11-24T02:15"
    assert plan.photo_slot(datetime(2026, 11, 24, 1, 30, tzinfo=UTC)) == "2026-11-24T02:30"


def test_the_nightly_trigger_is_two_in_the_morning_stockholm_time(sqlite_engine: Engine) -> None:
    scheduler = BackgroundScheduler()
    jobs = schedule(sqlite_engine).install(scheduler)
    assert [job.id for job in jobs] == ["final_prices"]
    winter = jobs[0].trigger.get_next_fire_time(None, datetime(2026, 11, 23, 12, tzinfo=UTC))
    summer = jobs[0].trigger.get_next_fire_time(None, datetime(2026, 7, 1, 12, tzinfo=UTC))
    assert winter.astimezone(UTC) == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert summer.astimezone(UTC) == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)

    custom = schedule(sqlite_engine, final_price_time="03:30", schedule_timezone="UTC",
                      photo_portal_url="http://127.0.0.1:9/portal", photos_interval_minutes=5)
    jobs = custom.install(BackgroundScheduler())
    assert [job.id for job in jobs] == ["final_prices", "photos"]
    fire = jobs[0].trigger.get_next_fire_time(None, datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2026, 11, 24, 3, 30, tzinfo=UTC)
    assert jobs[1].trigger.interval == timedelta(minutes=5)


@pytest.mark.parametrize(
    "settings",
    [{"final_price_time": "2am"}, {"final_price_time": "24:00"},
     {"schedule_timezone": "Mars/Olympus"}, {"photos_interval_minutes": 0}],
)
def test_bad_schedule_settings_are_configuration_errors(
    sqlite_engine: Engine, settings: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        schedule(sqlite_engine, **settings)


def test_racing_schedulers_claim_each_night_once(engine: Engine) -> None:
    """Four schedulers (threads, each with its own connection pool) fire the same five
    nights at the same instant: each night is enqueued exactly once."""
    sent = Sent()
    engines = [make_engine(str(engine.url.render_as_string(hide_password=False)))
               for _ in range(4)]
    nights = [STOCKHOLM_NIGHT + timedelta(days=d) for d in range(5)]
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def scheduler(own: Engine, index: int) -> None:
        for night in nights:
            plan = Schedule(Settings(), own, enqueue=sent, clock=lambda n=night: n,
                            name=f"scheduler-{index}")
            barrier.wait()
            wins.append(plan.run_final_prices())

    threads = [threading.Thread(target=scheduler, args=(own, i)) for i, own in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for own in engines:
        own.dispose()
    assert wins.count(True) == 5 and len(wins) == 20
    assert sorted(kwargs["run_id"] for _, kwargs in sent.messages) == [
        f"nightly-2026-11-{day}" for day in range(24, 29)
    ]
    with session_scope(engine) as session:
        slots = session.scalars(select(ScheduleSlotRow)).all()
    assert len(slots) == 5 and {s.claimed_by for s in slots} <= {f"scheduler-{i}" for i in range(4)}


def test_two_apschedulers_firing_together_enqueue_once(sqlite_engine: Engine) -> None:
    sent = Sent()
    fired = threading.Semaphore(0)

    class Counting(Schedule):
        def run_final_prices(self) -> bool:
            try:
                return super().run_final_prices()
            finally:
                fired.release()

    schedulers = []
    for index in range(2):
        plan = Counting(Settings(), sqlite_engine, enqueue=sent, clock=lambda: STOCKHOLM_NIGHT,
                        name=f"s{index}")
        scheduler = BackgroundScheduler(timezone=plan.tz)
        (job,) = plan.install(scheduler)
        scheduler.start(paused=True)
        job.modify(next_run_time=datetime.now(plan.tz))
        schedulers.append(scheduler)
    for scheduler in schedulers:
        scheduler.resume()
    try:
        assert fired.acquire(timeout=10) and fired.acquire(timeout=10)
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
    assert sent.messages == [(FINAL_PRICE_ACTOR, {"run_id": "nightly-2026-11-24"})]


def test_a_failed_enqueue_gives_the_slot_back(sqlite_engine: Engine) -> None:
    def broken(_actor: str, _kwargs: dict[str, Any]) -> None:
        raise ConnectionError("redis is down")

    assert not schedule(sqlite_engine, broken).run_final_prices()
    assert claim_slot(sqlite_engine, "final_prices", "2026-11-24", "retry")


def test_photo_pulls_are_claimed_per_interval(sqlite_engine: Engine) -> None:
    sent = Sent()
    first = schedule(sqlite_engine, sent, photo_portal_url="http://portal")
    later = schedule(sqlite_engine, sent, now=STOCKHOLM_NIGHT + timedelta(minutes=15),
                     photo_portal_url="http://portal")
    assert first.run_photos() and not first.run_photos() and later.run_photos()
    assert sent.messages == [(PHOTOS_ACTOR, {}), (PHOTOS_ACTOR, {})]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_the_nightly_message_runs_the_sync_on_a_worker(
    sqlite_engine: Engine, make_runtime: Any, tmp_path: Path
) -> None:
    """The scheduler's message, found by actor name on the broker, runs the whole sync."""
    from adapters.http import HttpTransport

    seed(sqlite_engine, [{"id": "N1"}, {"id": "N2"}])
    with Sandbox(["hemnet"]) as sandbox:
        transport = HttpTransport("hemnet", sandbox.url("hemnet"))
        runtime: Runtime = make_runtime(sqlite_engine, transport)
        broker = setup_broker(runtime.settings, runtime)
        import syndication.jobs  # noqa: F401

        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
        worker.start()
        try:
            nightly = Schedule(Settings(), sqlite_engine, clock=lambda: STOCKHOLM_NIGHT)
            assert nightly.run_final_prices()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(
                sandbox["hemnet"].final_price(lid) for lid in ("N1", "N2")
            ):
                time.sleep(0.05)
        finally:
            worker.stop()
        assert sandbox["hemnet"].final_price("N1") and sandbox["hemnet"].final_price("N2")


@pytest.mark.usefixtures("restore_logging")
def test_scheduler_once_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(make_engine(url))
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", url)
    monkeypatch.setenv("SYNDICATION_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.delenv("SYNDICATION_BROKER_URL", raising=False)
    assert main(["scheduler", "--once", "final_prices"]) == 0
    assert main(["scheduler", "--once", "final_prices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["final_prices: enqueued", "final_prices: already claimed for this slot"]
