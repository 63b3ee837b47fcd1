"""The transfer actors: thin wrappers over :mod:`syndication.transfer`.

``transfer_listing`` runs one job of a transfer request; ``publish_feed`` the
feed of one office on a pull marketplace; ``confirm_publication``
checks after a delay whether a ``sent`` listing is published yet, and asks
again with a growing delay (bounded by :data:`~syndication.transfer.CONFIRM_POLLS`).
Logging context, attempt counting and metrics come from the broker's
middleware (:mod:`syndication.middleware`), not from here. No actor here
declares ``max_retries``: their budget is the broker's default,
``SYNDICATION_MAX_RETRIES``; a :class:`~syndication.errors.PermanentError` is
never retried (``throws``). The transfer and the publication check call a
push marketplace, so they take one of its slots (``bulkhead=True``,
:mod:`syndication.bulkheads`). ``transfer_listing`` is ``async def``: the concurrent
worker keeps many in flight per process (:mod:`syndication.concurrent`).
:data:`SCHEDULER` stages every follow-up message
in the outbox, in the transaction of the state that waits for it
(:mod:`syndication.outbox`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.common import compute_backoff
from dramatiq.middleware import CurrentMessage
from sqlmodel import Session

from syndication.errors import PermanentError
from syndication.outbox import Staging, stage
from syndication.outbox.bulk import Uniform, stage_uniform
from syndication.runtime import current_runtime
from syndication.store.db import session_scope
from syndication.transfer import (
    CONFIRM_POLLS,
    TRANSFER_LIFECYCLE,
    JobRef,
)
from syndication.transfer import (
    confirm_publication as _confirm,
)
from syndication.transfer.concurrent_job import TransferSteps, run_transfer_message
from syndication.transfer.feed_job import FEED_LIFECYCLE, run_feed_job
from syndication.transfer.request import resume_stalled_fan_outs

TRANSFER_QUEUE = "transfers"
CONFIRM_QUEUE = "confirmations"
FEED_QUEUE = "feeds"


class ActorScheduler:
    """The :class:`~syndication.transfer.Scheduler` of these actors: each message is
    staged in the outbox in the caller's transaction and sent once it commits."""

    def transfer(self, session: Session, jobs: list[JobRef]) -> None:
        """The jobs' messages from one template (:mod:`syndication.outbox.bulk`): a
        fan-out batch stages hundreds at once."""
        stage_uniform(session, _transfer_messages(),
                      [(job.listing_id, job.marketplace, job.request_id) for job in jobs],
                      broker=transfer_listing.broker)

    def confirm(
        self, session: Session, job: JobRef, document_hash: str, poll: int, delay_ms: int
    ) -> None:
        _stage(session, confirm_publication,
               {**job.as_kwargs(), "document_hash": document_hash, "poll": poll}, delay_ms)

    def publish_feed(
        self, session: Session, office_id: str, marketplace: str, request_id: str
    ) -> None:
        _stage(session, publish_feed,
               {"office_id": office_id, "marketplace": marketplace, "request_id": request_id})

    def confirm_later(
        self, job: JobRef, document_hash: str, poll: int, delay_ms: int
    ) -> Staging:
        message = confirm_publication.message_with_options(
            kwargs={**job.as_kwargs(), "document_hash": document_hash, "poll": poll})
        return Staging(confirm_publication.broker, message, delay_ms)


def _transfer_messages() -> Uniform:
    """The messages of ``transfer_listing``, whose keywords are :class:`JobRef`'s."""
    return Uniform.of(transfer_listing, ("listing_id", "marketplace", "request_id"))


def _stage(
    session: Session, actor: dramatiq.Actor[..., None], kwargs: dict[str, Any], delay_ms: int = 0
) -> None:
    stage(session, actor.message_with_options(kwargs=kwargs), delay_ms=delay_ms,
          broker=actor.broker)


def fan_out_sweep(broker: dramatiq.Broker) -> Callable[[], int]:
    """A relay sweep: take over the fan-outs whose process stopped, and finish them."""
    owner = f"sweep-{uuid.uuid4().hex[:12]}"

    def resume_fan_outs() -> int:
        return resume_stalled_fan_outs(current_runtime(broker), SCHEDULER, owner=owner)

    return resume_fan_outs


SCHEDULER = ActorScheduler()


@dramatiq.actor(
    queue_name=TRANSFER_QUEUE, lifecycle=TRANSFER_LIFECYCLE, throws=(PermanentError,),
    bulkhead=True, steps=TransferSteps(TRANSFER_LIFECYCLE, SCHEDULER),
)
async def transfer_listing(listing_id: str, marketplace: str, request_id: str) -> None:
    """Transfer one listing to one marketplace and record the outcome; the start is
    counted in the job's first transaction. A coroutine: under the concurrent worker
    (``syndication worker``) it holds no thread while the marketplace answers, and that
    worker runs its :class:`~syndication.transfer.concurrent_job.TransferSteps` itself
    (:mod:`syndication.transfer.concurrent_job`)."""
    message = CurrentMessage.get_current_message()
    assert message is not None, "the broker runs CurrentMessage (syndication.broker)"
    await run_transfer_message(TRANSFER_LIFECYCLE, transfer_listing.broker, message, SCHEDULER)


@dramatiq.actor(queue_name=CONFIRM_QUEUE, throws=(PermanentError,), bulkhead=True)
def confirm_publication(
    listing_id: str, marketplace: str, request_id: str, document_hash: str, poll: int = 0
) -> None:
    """Check a ``sent`` listing; ask again later, with backoff, while not yet published."""
    runtime = current_runtime()
    job = JobRef(listing_id, marketplace, request_id)
    if _confirm(runtime, job, document_hash) or poll + 1 >= CONFIRM_POLLS:
        return
    _, delay = compute_backoff(
        poll + 1, factor=runtime.settings.confirm_delay_ms, jitter=False, max_backoff=3_600_000
    )
    with session_scope(runtime.engine) as session:
        SCHEDULER.confirm(session, job, document_hash, poll + 1, delay)


@dramatiq.actor(queue_name=FEED_QUEUE, lifecycle=FEED_LIFECYCLE, throws=(PermanentError,))
def publish_feed(office_id: str, marketplace: str, request_id: str) -> None:
    """Rebuild and publish an office's full feed on a pull marketplace (R17), and record
    the outcome of each of its listings there."""
    run_feed_job(current_runtime(), office_id, marketplace, request_id)
