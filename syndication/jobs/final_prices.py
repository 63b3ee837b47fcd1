"""The final-price actors (R7): the nightly run and its batches.

``sync_final_prices`` is what the scheduler sends each night: it selects the
candidates and queues ``send_final_prices`` messages of :data:`BATCH_SIZE`
listing ids each. A batch re-decides its listings when it runs, so a message
delivered twice, or retried after a worker died, sends nothing twice; dramatiq
retries a batch whose database work failed (up to the five retries it declares,
never for a :class:`~syndication.errors.PermanentError`), while a Hemnet failure
is recorded per listing (the transport has already retried it) and picked up by
the next run. The nightly run itself declares no retries: a run that failed is
replaced by the next night's.
"""

from __future__ import annotations

import dramatiq

from syndication.errors import PermanentError
from syndication.final_prices import BATCH_SIZE, dispatch, new_run_id, process_batch
from syndication.logs import get_logger
from syndication.metrics import FINAL_PRICE_LISTINGS, FINAL_PRICE_RUNS
from syndication.runtime import current_runtime

QUEUE = "final_prices"
SYNC_ACTOR = "sync_final_prices"
BATCH_ACTOR = "send_final_prices"


@dramatiq.actor(
    actor_name=BATCH_ACTOR,
    queue_name=QUEUE,
    max_retries=5,
    min_backoff=1000,
    time_limit=30 * 60_000,
    throws=(PermanentError,),
)
def send_final_prices(listing_ids: list[str], run_id: str) -> None:
    """Deliver the final prices (or retractions) of one batch of listings."""
    outcome = process_batch(current_runtime(), listing_ids, run_id)
    states = list(outcome.states.values())
    for state in states:
        FINAL_PRICE_LISTINGS.labels(state).inc()
    get_logger(job=BATCH_ACTOR, run_id=run_id, marketplace="hemnet").info(
        "final_price_batch_done",
        listings=len(listing_ids),
        sent=states.count("sent"),
        retracted=states.count("retracted"),
        failed=states.count("failed") + states.count("retraction_failed"),
    )


def enqueue_batch(listing_ids: list[str], run_id: str) -> None:
    """Queue one batch (the ``enqueue`` callable :func:`dispatch` takes)."""
    send_final_prices.send(listing_ids, run_id)


@dramatiq.actor(actor_name=SYNC_ACTOR, queue_name=QUEUE, max_retries=0, time_limit=60 * 60_000)
def sync_final_prices(run_id: str | None = None) -> None:
    """The nightly run: select the candidates and queue their batches."""
    runtime = current_runtime()
    run_id = run_id or new_run_id(runtime.clock())
    try:
        result = dispatch(runtime.engine, run_id, enqueue_batch, batch_size=BATCH_SIZE)
    except Exception:
        FINAL_PRICE_RUNS.labels("failed").inc()
        raise
    FINAL_PRICE_RUNS.labels("dispatched").inc()
    get_logger(job=SYNC_ACTOR, run_id=run_id, marketplace="hemnet").info(
        "final_price_run_queued", queued=len(result.queued), skipped=len(result.skipped)
    )
