"""The reconciliation actor: ``reconcile_offices`` is the nightly R13 run.

The scheduler sends it each night after the final-price sync
(``SYNDICATION_RECONCILE_TIME``); it reconciles every office, repairs only what
is safe without a person and records the run
(:func:`syndication.reconcile_runs.run_reconciliation`). It declares
``max_retries=0``: a run that failed is replaced by the next night's, and a
marketplace that could not be asked is recorded as such in the report.
"""

from __future__ import annotations

import dramatiq

from syndication.jobs.transfer import SCHEDULER
from syndication.reconcile_runs import run_reconciliation
from syndication.runtime import current_runtime

ACTOR_NAME = "reconcile_offices"
QUEUE = "reconcile"


@dramatiq.actor(actor_name=ACTOR_NAME, queue_name=QUEUE, max_retries=0,
                time_limit=3 * 60 * 60 * 1000)
def reconcile_offices(run_id: str) -> None:
    """Reconcile every office and record the run under ``run_id``."""
    run_reconciliation(current_runtime(), run_id, SCHEDULER, trigger="nightly")
