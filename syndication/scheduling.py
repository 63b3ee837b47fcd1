"""The schedule: the nightly final-price sync, the nightly reconciliation and the photo
pull, with APScheduler.

The scheduler only *enqueues* dramatiq messages — the work runs on the workers — so
a scheduler is cheap and several may run for safety. Two schedulers firing the same
run must still start it once: before enqueuing, a scheduler claims the run's slot
(:class:`~syndication.store.models.ScheduleSlotRow`, primary key job + slot) with an
INSERT; the database's uniqueness decides, and the loser sees an IntegrityError and
does nothing. The final-price and reconciliation slots are the local date in
``settings.schedule_timezone`` (one run per night); the photo slot is the local time
floored to the interval. The reconciliation (R13) runs at ``settings.reconcile_time``,
by default :data:`RECONCILE_AFTER_MINUTES` after the final-price sync, so the night's
final prices are out before the marketplaces are asked what they hold.

Actors are looked up by name on the broker when a run fires, so the photo module
(``pull_photos``) and the final-price actors need not be importable here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dramatiq
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from syndication.errors import ConfigurationError
from syndication.logs import get_logger
from syndication.settings import Settings
from syndication.store import session_scope
from syndication.store.models import ScheduleSlotRow, utcnow

FINAL_PRICE_JOB = "final_prices"
PHOTOS_JOB = "photos"
FINAL_PRICE_ACTOR = "sync_final_prices"
PHOTOS_ACTOR = "pull_photos"
RECONCILE_JOB = "reconcile"
RECONCILE_ACTOR = "reconcile_offices"
RECONCILE_AFTER_MINUTES = 60
MISFIRE_GRACE_SECONDS = 3 * 3600
"""A nightly run missed (scheduler down at 02:00) still starts if it is back within 3 h."""


def parse_time(value: str, name: str = "SYNDICATION_FINAL_PRICE_TIME") -> tuple[int, int]:
    """``"02:00"`` → ``(2, 0)``; anything else is a :class:`ConfigurationError` naming
    the variable ``name``."""
    try:
        hour_text, minute_text = value.split(":")
        hour, minute = int(hour_text), int(minute_text)
    except ValueError:
        hour, minute = -1, -1
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ConfigurationError(
            f"{name} must be HH:MM (24-hour), not {value!r}"
        )
    return hour, minute


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"SYNDICATION_TIMEZONE {name!r} is not a known time zone"
        ) from None


def reconcile_time(settings: Settings) -> tuple[int, int]:
    """When the nightly reconciliation runs: ``SYNDICATION_RECONCILE_TIME``, or
    :data:`RECONCILE_AFTER_MINUTES` after the final-price time (wrapping past midnight)."""
    if settings.reconcile_time:
        return parse_time(settings.reconcile_time, "SYNDICATION_RECONCILE_TIME")
    hour, minute = parse_time(settings.final_price_time)
    total = (hour * 60 + minute + RECONCILE_AFTER_MINUTES) % (24 * 60)
    return total // 60, total % 60


def claim_slot(engine: Engine, job: str, slot: str, claimed_by: str,
               now: datetime | None = None) -> bool:
    """Claim the run ``slot`` of ``job``; False when another scheduler already has."""
    try:
        with session_scope(engine) as session:
            session.add(ScheduleSlotRow(job=job, slot=slot, claimed_by=claimed_by,
                                        claimed_at=now or utcnow()))
    except IntegrityError:
        return False
    return True


def release_slot(engine: Engine, job: str, slot: str) -> None:
    """Give a claimed slot back (its message could not be enqueued), so it can be retried."""
    with session_scope(engine) as session:
        row = session.get(ScheduleSlotRow, (job, slot))
        if row is not None:
            session.delete(row)


@dataclass
class Schedule:
    """The jobs of one scheduler process and how each run is claimed and enqueued.

    ``enqueue(actor_name, kwargs)`` sends a message (default: to the actor of that
    name on dramatiq's broker); ``clock`` gives aware UTC times.
    """

    settings: Settings
    engine: Engine
    enqueue: Callable[[str, dict[str, Any]], None] | None = None
    clock: Callable[[], datetime] = utcnow
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        self.tz = zone(self.settings.schedule_timezone)
        self.hour, self.minute = parse_time(self.settings.final_price_time)
        self.reconcile_hour, self.reconcile_minute = reconcile_time(self.settings)
        if self.settings.photos_interval_minutes < 1:
            raise ConfigurationError("SYNDICATION_PHOTOS_INTERVAL_MINUTES must be at least 1")

    def final_price_slot(self, now: datetime) -> str:
        """One slot per local night: the local date of the run."""
        return now.astimezone(self.tz).date().isoformat()

    def photo_slot(self, now: datetime) -> str:
        """One slot per interval: the local time floored to the interval."""
        local = now.astimezone(self.tz).replace(second=0, microsecond=0)
        minutes = local.hour * 60 + local.minute
        floored = minutes - minutes % self.settings.photos_interval_minutes
        start = local.replace(hour=0, minute=0) + timedelta(minutes=floored)
        return start.strftime("%Y-%m-%dT%H:%M")

    def run_final_prices(self) -> bool:
        """Fire the nightly sync once per night, whoever else fires it; True if this did."""
        slot = self.final_price_slot(self.clock())
        return self._fire(FINAL_PRICE_JOB, slot, FINAL_PRICE_ACTOR, {"run_id": f"nightly-{slot}"})

    def run_reconcile(self) -> bool:
        """Fire the nightly reconciliation once per night; True if this scheduler did."""
        slot = self.final_price_slot(self.clock())
        return self._fire(RECONCILE_JOB, slot, RECONCILE_ACTOR, {"run_id": f"nightly-{slot}"})

    def run_photos(self) -> bool:
        """Fire the photo pull once per interval; True if this scheduler did."""
        return self._fire(PHOTOS_JOB, self.photo_slot(self.clock()), PHOTOS_ACTOR, {})

    def _fire(self, job: str, slot: str, actor: str, kwargs: dict[str, Any]) -> bool:
        log = get_logger(job=job, slot=slot, scheduler=self.name)
        if not claim_slot(self.engine, job, slot, self.name, self.clock()):
            log.info("schedule_slot_taken")
            return False
        try:
            (self.enqueue or send_by_name)(actor, kwargs)
        except Exception:
            log.exception("schedule_enqueue_failed", actor=actor)
            release_slot(self.engine, job, slot)
            return False
        log.info("schedule_enqueued", actor=actor)
        return True

    def install(self, scheduler: BaseScheduler) -> list[Any]:
        """Add the jobs to an APScheduler scheduler; the photo pull only when the portal
        is configured. Returns the APScheduler jobs."""
        options = {"coalesce": True, "max_instances": 1,
                   "misfire_grace_time": MISFIRE_GRACE_SECONDS}
        jobs = [
            scheduler.add_job(
                self.run_final_prices,
                CronTrigger(hour=self.hour, minute=self.minute, timezone=self.tz),
                id=FINAL_PRICE_JOB, name="nightly final-price sync", **options,
            )
        ]
        if self.settings.photo_portal_url:
            jobs.append(
                scheduler.add_job(
                    self.run_photos,
                    IntervalTrigger(minutes=self.settings.photos_interval_minutes,
                                    timezone=self.tz),
                    id=PHOTOS_JOB, name="photo pull", **{**options, "misfire_grace_time": 60},
                )
            )
        return jobs


    def install_reconciliation(self, scheduler: BaseScheduler) -> Any:
        """Add the nightly reconciliation (R13) to ``scheduler``; returns the APScheduler
        job. ``syndication scheduler`` installs it beside :meth:`install`'s jobs."""
        return scheduler.add_job(
            self.run_reconcile,
            CronTrigger(hour=self.reconcile_hour, minute=self.reconcile_minute,
                        timezone=self.tz),
            id=RECONCILE_JOB, name="nightly reconciliation", coalesce=True, max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )


def send_by_name(actor_name: str, kwargs: dict[str, Any]) -> None:
    """Send a message to the actor called ``actor_name`` on dramatiq's broker."""
    dramatiq.get_broker().get_actor(actor_name).send(**kwargs)
