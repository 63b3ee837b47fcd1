"""The photo actor: ``pull_photos`` pulls every ready portal assignment (R11).

The scheduler sends it every ``photos_interval_minutes``; it can also be sent
by hand. It declares ``max_retries=0``, so dramatiq never retries it: a portal
that is down is simply tried again at the next scheduled run, and each
assignment's own problems are recorded for support by the photo module.
"""

from __future__ import annotations

import dramatiq

from adapters.photo_portal import PhotoPortalClient
from syndication.errors import SyndicationError
from syndication.logs import get_logger
from syndication.photos import PhotoIntake
from syndication.runtime import current_runtime

ACTOR_NAME = "pull_photos"


@dramatiq.actor(actor_name=ACTOR_NAME, max_retries=0, time_limit=60 * 60 * 1000)
def pull_photos() -> None:
    """Pull the ready assignments into their listings and log a summary."""
    runtime = current_runtime()
    log = get_logger(job=ACTOR_NAME)
    try:
        with PhotoPortalClient.from_settings(runtime.settings) as portal:
            intake = PhotoIntake.from_settings(
                runtime.engine, portal, runtime.settings, clock=runtime.clock
            )
            report = intake.pull()
    except SyndicationError as exc:
        log.error("photo_pull_failed", error=str(exc))
        return
    log.info(
        "photo_pull_done",
        assignments=len(report.results),
        images_added=report.images_added,
        problems=len(report.problems),
    )
