"""Delivering one batch's final prices (or retractions) to Hemnet, several at once (R7).

At 30 ms a call, one delivery after another caps a batch at about 30 listings/s
whatever the machine, so a batch hands its deliveries to the process's pool of
final-price senders (:data:`POOL`, ``settings.final_price_concurrency`` threads,
``SYNDICATION_FINAL_PRICE_CONCURRENCY``) and waits for them all. The pool is the
runtime's, shared by every batch the process runs at once, so the concurrency
bound holds for the process as a whole and never multiplies with its worker
threads; the HTTP transport's connection pool is sized to match
(:func:`adapters.config.load_marketplaces`), so every sender keeps its connection alive.

Each delivery ends with its own outcome: one that fails (or raises) is that listing's
``failed``, never the batch's, and the idempotency key of each is the one a sequential
run would send (listing, document hash and the number of deliveries Hemnet accepted
before), so a replay after a crash is answered as the first send was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from adapters.base import Delivery, Transport
from feeds.common import document_hash
from syndication.errors import SyndicationError
from syndication.final_price_selection import DELIVERY_ACTIONS, MARKETPLACE, Planned
from syndication.logs import get_logger
from syndication.runtime import Runtime
from syndication.transfer import NOT_KNOWN_NOTE
from syndication.transfer.keys import idempotency_key

__all__ = ["POOL", "BatchOutcome", "deliver_all"]

POOL = "final-price-send"
"""The runtime's thread pool the final-price deliveries of a process share."""


@dataclass
class BatchOutcome:
    """What one batch did: listing id → final sync state (``sent``, ``failed``, …)."""

    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def deliver_all(
    runtime: Runtime, actionable: Sequence[Planned], generations: Mapping[str, int]
) -> BatchOutcome:
    """Deliver every planned listing through the process's sender pool; the outcome of each.

    ``generations`` holds how many final-price deliveries Hemnet accepted per listing
    (part of the idempotency key). A batch of one is sent on the calling thread.
    """
    outcome = BatchOutcome()
    if not actionable:
        return outcome
    transport = runtime.transport(MARKETPLACE)

    def one(planned: Planned) -> tuple[str, str, str | None]:
        return _deliver(transport, planned, generations.get(planned.listing_id, 0))

    if len(actionable) == 1:
        results = [one(actionable[0])]
    else:
        pool = runtime.pool(POOL, runtime.settings.final_price_concurrency)
        results = list(pool.map(one, actionable))
    for listing_id, state, error in results:
        outcome.states[listing_id] = state
        if error is not None:
            outcome.errors[listing_id] = error
    return outcome


def _deliver(
    transport: Transport, planned: Planned, generation: int
) -> tuple[str, str, str | None]:
    """One listing's delivery: ``(listing_id, state, error or note)``; never raises for
    a failure of the marketplace or of this listing's document."""
    retract = planned.action == "retract"
    log = get_logger(listing_id=planned.listing_id, marketplace=MARKETPLACE)
    failed = "retraction_failed" if retract else "failed"
    if planned.document is None:
        return planned.listing_id, failed, planned.error or "no document could be built"
    action = DELIVERY_ACTIONS[planned.action]
    delivery = Delivery(
        marketplace=MARKETPLACE,
        listing_id=planned.listing_id,
        office_id=planned.office_id,
        action=action,
        document=planned.document,
        idempotency_key=idempotency_key(
            planned.listing_id, MARKETPLACE, action, document_hash(planned.document), generation
        ),
    )
    try:
        receipt = transport.send(delivery)
    except SyndicationError as exc:
        log.warning("final_price_failed", action=action, error=str(exc))
        return planned.listing_id, failed, str(exc)
    except Exception as exc:  # noqa: BLE001 - one listing's bug must not lose the batch's records
        log.exception("final_price_error", action=action)
        return planned.listing_id, failed, f"unexpected error: {type(exc).__name__}: {exc}"
    log.debug("final_price_delivered", action=action, price=planned.price)
    if retract:
        return planned.listing_id, "retracted", NOT_KNOWN_NOTE if receipt.not_known else None
    return planned.listing_id, "sent", None
