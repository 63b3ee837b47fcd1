"""The nightly reconciliation's place in the schedule and the guard's settings: the time
after the final prices, one run per night however many schedulers fire, clear errors
naming the variable (SQLite and PostgreSQL for the slot)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from syndication.errors import ConfigurationError
from syndication.holds import Guard
from syndication.scheduling import RECONCILE_ACTOR, Schedule, reconcile_time
from syndication.settings import Settings

STOCKHOLM_NIGHT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 03:00 CET


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, (3, 0)),
    ({"SYNDICATION_FINAL_PRICE_TIME": "23:30"}, (0, 30)),
    ({"SYNDICATION_RECONCILE_TIME": "04:15"}, (4, 15)),
])
def test_the_reconciliation_runs_after_the_final_prices(
        environ: dict[str, str], expected: tuple[int, int]) -> None:
    assert reconcile_time(Settings.from_env(environ)) == expected


@pytest.mark.parametrize(("environ", "named"), [
    ({"SYNDICATION_RECONCILE_TIME": "3am"}, "SYNDICATION_RECONCILE_TIME"),
    ({"SYNDICATION_MASS_DELETE_SHARE": "20%"}, "SYNDICATION_MASS_DELETE_SHARE"),
    ({"SYNDICATION_MASS_DELETE_SHARE": "0"}, "SYNDICATION_MASS_DELETE_SHARE"),
    ({"SYNDICATION_MASS_DELETE_SHARE": "1.5"}, "SYNDICATION_MASS_DELETE_SHARE"),
    ({"SYNDICATION_MASS_DELETE_MIN": "0"}, "SYNDICATION_MASS_DELETE_MIN"),
])
def test_bad_settings_name_their_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        reconcile_time(Settings.from_env(environ))


def test_the_guard_reads_its_limits_from_the_settings() -> None:
    assert Guard.from_settings(Settings.from_env({})) == Guard(0.2, 5)
    guard = Guard.from_settings(Settings.from_env({"SYNDICATION_MASS_DELETE_SHARE": "0.5",
                                                   "SYNDICATION_MASS_DELETE_MIN": "2"}))
    assert guard == Guard(0.5, 2)
    assert guard.trips(2, 3) and not guard.trips(2, 4) and not guard.trips(1, 1)


def test_the_trigger_fires_at_the_reconcile_time_stockholm(sqlite_engine: Engine) -> None:
    plan = Schedule(Settings(), sqlite_engine)
    job = plan.install_reconciliation(BackgroundScheduler())
    fire = job.trigger.get_next_fire_time(None, datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert job.id == "reconcile"
    assert fire.astimezone(UTC) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_two_schedulers_start_one_reconciliation_a_night(engine: Engine) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def enqueue(actor: str, kwargs: dict[str, Any]) -> None:
        with lock:
            sent.append((actor, kwargs))

    plans = [Schedule(Settings(), engine, enqueue=enqueue, clock=lambda: STOCKHOLM_NIGHT,
                      name=f"s{n}") for n in range(2)]
    threads = [threading.Thread(target=plan.run_reconcile) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sent == [(RECONCILE_ACTOR, {"run_id": "nightly-2026-11-24"})]
    assert not plans[0].run_reconcile(), "the night's slot is taken"
