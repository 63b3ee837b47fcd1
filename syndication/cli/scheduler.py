"""``syndication scheduler``: run the schedule (nightly final prices and reconciliation,
photo pulls).

The scheduler enqueues dramatiq messages at the configured times: the final-price
sync every night at ``SYNDICATION_FINAL_PRICE_TIME`` (default 02:00) in
``SYNDICATION_TIMEZONE`` (default Europe/Stockholm), the reconciliation of every
office (R13) at ``SYNDICATION_RECONCILE_TIME`` (default an hour after the final
prices), and the photo pull every
``SYNDICATION_PHOTOS_INTERVAL_MINUTES`` when ``SYNDICATION_PHOTO_PORTAL_URL`` is set.
Several schedulers may run at once; each run still starts once (a claimed slot in the
database). Without ``SYNDICATION_BROKER_URL`` the jobs run on worker threads of this
process; with Redis, ``syndication worker`` processes run them, and this process runs an
outbox relay of its own (``syndication.outbox``). With ``--health-port`` it serves
``/healthz``, ``/readyz`` and its ``/metrics`` and tells systemd when it is ready.
It does not migrate the
store unless given ``--migrate`` (or ``SYNDICATION_MIGRATE_ON_START=1``): a store that
is behind is refused with exit status 2, so a deployment migrates once, on purpose.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from typing import Any

import dramatiq
from apscheduler.schedulers.blocking import BlockingScheduler

from syndication.broker import in_process_worker, is_in_process, relay_thread, setup_broker
from syndication.health import HealthServer, readiness, wait_ready_then_notify
from syndication.metrics import exposition
from syndication.runtime import Runtime
from syndication.scheduling import (
    FINAL_PRICE_ACTOR,
    FINAL_PRICE_JOB,
    PHOTOS_ACTOR,
    PHOTOS_JOB,
    RECONCILE_ACTOR,
    RECONCILE_JOB,
    Schedule,
)
from syndication.settings import Settings

ACTORS = {FINAL_PRICE_JOB: FINAL_PRICE_ACTOR, PHOTOS_JOB: PHOTOS_ACTOR,
          RECONCILE_JOB: RECONCILE_ACTOR}
"""The actor each scheduled job sends to."""


def handler(args: argparse.Namespace, settings: Settings) -> int:
    runtime = Runtime.from_settings(
        settings, migrate_store=args.migrate or settings.migrate_on_start
    )
    broker = setup_broker(settings, runtime)

    schedule = Schedule(settings, runtime.engine, clock=runtime.clock)
    if args.once:
        try:
            return run_once(args.once, schedule, broker, settings.worker_threads)
        finally:
            runtime.close()
    scheduler = BlockingScheduler(timezone=schedule.tz)
    jobs = [*schedule.install(scheduler), schedule.install_reconciliation(scheduler)]
    worker: contextlib.AbstractContextManager[object] = (
        in_process_worker(broker, settings.worker_threads)
        if is_in_process(broker)
        else relay_thread(broker, "scheduler")
    )
    health = _health_server(args, settings, runtime)
    now = runtime.clock().astimezone(schedule.tz)
    for job in jobs:
        upcoming = job.trigger.get_next_fire_time(None, now)
        print(f"{job.name}: next run {upcoming:%Y-%m-%d %H:%M %Z}", file=sys.stderr)
    with worker:
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            if health is not None:
                health.stop()
            runtime.close()
    return 0


def _health_server(args: argparse.Namespace, settings: Settings,
                   runtime: Runtime) -> HealthServer | None:
    """With ``--health-port``: ``/healthz``, ``/readyz`` and this process's ``/metrics``
    on a thread, and ``READY=1`` to systemd once the store (and Redis) answer."""
    if args.health_port is None:
        return None

    def check() -> list[str]:
        return readiness(runtime.engine, settings.broker_url)

    server = HealthServer(args.listen_host, args.health_port, check, exposition).start()
    threading.Thread(target=wait_ready_then_notify, args=(check, threading.Event()),
                     daemon=True).start()
    print(f"health on http://{args.listen_host}:{server.port}/readyz", file=sys.stderr)
    return server


def run_once(job: str, schedule: Schedule, broker: dramatiq.Broker, threads: int) -> int:
    """Claim and enqueue the current slot of ``job`` now.

    With the in-process broker no other process can ever take the message,
    and the slot is claimed, so this process runs it (and the messages it
    queues in turn, the final-price batches) before it exits; with Redis the
    workers do.
    """
    fire = {FINAL_PRICE_JOB: schedule.run_final_prices, PHOTOS_JOB: schedule.run_photos,
            RECONCILE_JOB: schedule.run_reconcile}
    if not is_in_process(broker):
        fired = fire[job]()
    else:
        with in_process_worker(broker, threads):
            fired = fire[job]()
            if fired:
                queue = broker.get_actor(ACTORS[job]).queue_name
                broker.join(queue, fail_fast=False)  # type: ignore[call-arg]
    print(f"{job}: {'enqueued' if fired else 'already claimed for this slot'}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scheduler",
        help="run the schedule: nightly final prices to Hemnet and reconciliation, photo pulls",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--once",
        choices=(FINAL_PRICE_JOB, PHOTOS_JOB, RECONCILE_JOB),
        help="claim and enqueue the current slot of one job now, then exit (without Redis: "
        "after running it here)",
    )
    parser.add_argument("--health-port", type=int, default=None, metavar="PORT",
                        help="serve /healthz, /readyz and /metrics on PORT (0: any free port)")
    parser.add_argument("--listen-host", default="127.0.0.1", metavar="HOST",
                        help="address of the health port (127.0.0.1)")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="upgrade the store to the newest schema on start (also SYNDICATION_MIGRATE_ON_START"
        "=1); without it a store that is behind is refused",
    )
    parser.set_defaults(func=handler)
