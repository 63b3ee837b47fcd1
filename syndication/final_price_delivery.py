"""Delivering one batch's final prices (or retractions) to Hemnet, several at once (R7).

At 30 ms a call, one delivery after another caps a batch at about 30 listings/s
whatever the machine, so a batch hands its deliveries to the process's final-price
sender and waits for them all. The sender is the runtime's, shared by every batch
the process runs at once, so the concurrency bound
(``settings.final_price_concurrency``, ``SYNDICATION_FINAL_PRICE_CONCURRENCY``)
holds for the process as a whole and never multiplies with its worker threads.

An HTTP Hemnet (:class:`~adapters.http.HttpTransport`) is spoken to by its async
twin (:class:`~adapters.async_http.AsyncHttpTransport`: the same address, token,
timeouts, deadline, retry policy and wire steps) on one event loop of the process
(:class:`LoopSender`), the bound an ``asyncio.Semaphore``: a call in flight holds no
thread, and aiohttp costs a fraction of the CPU of a requests session per call, which
is what bounds a sync of 100,000 listings. Any other transport (a file drop, a test's
recorder) is called from the runtime's thread pool :data:`POOL` of that many threads.

Each delivery ends with its own outcome: one that fails (or raises) is that listing's
``failed``, never the batch's, and the idempotency key of each is the one a sequential
run would send (listing, document hash and the number of deliveries Hemnet accepted
before), so a replay after a crash is answered as the first send was. Only failures are
logged per listing (with its id and the marketplace); the batch logs its summary.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from adapters.async_http import AsyncHttpTransport
from adapters.base import Delivery, Receipt, Transport
from adapters.http import HttpTransport
from feeds.common import document_hash
from syndication.errors import SyndicationError
from syndication.final_price_selection import DELIVERY_ACTIONS, MARKETPLACE, Planned
from syndication.logs import get_logger
from syndication.runtime import Runtime
from syndication.transfer import NOT_KNOWN_NOTE
from syndication.transfer.keys import idempotency_key

__all__ = ["POOL", "SENDER", "BatchOutcome", "LoopSender", "deliver_all"]

POOL = "final-price-send"
"""The runtime's thread pool the final-price deliveries of a process share (transports
that are not HTTP)."""
SENDER = "final-price-sender"
"""The runtime's :class:`LoopSender` (HTTP transports), one per Hemnet transport."""

Result = tuple[str, str, str | None]
"""One delivery's ``(listing_id, state, error or note)``."""


@dataclass
class BatchOutcome:
    """What one batch did: listing id → final sync state (``sent``, ``failed``, …)."""

    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def deliver_all(
    runtime: Runtime, actionable: Sequence[Planned], generations: Mapping[str, int]
) -> BatchOutcome:
    """Deliver every planned listing through the process's sender; the outcome of each.

    ``generations`` holds how many final-price deliveries Hemnet accepted per listing
    (part of the idempotency key). Off HTTP, a batch of one is sent on the calling thread.
    """
    outcome = BatchOutcome()
    if not actionable:
        return outcome
    transport = runtime.transport(MARKETPLACE)
    bound = runtime.settings.final_price_concurrency
    results: list[Result]
    if isinstance(transport, HttpTransport):
        sender = runtime.resource(f"{SENDER}-{id(transport)}",
                                  lambda: LoopSender(_twin(transport, bound), bound))
        results = sender.deliver(actionable, generations)
    else:
        def one(planned: Planned) -> Result:
            return _deliver(transport, planned, generations.get(planned.listing_id, 0))

        if len(actionable) == 1:
            results = [one(actionable[0])]
        else:
            results = list(runtime.pool(POOL, bound).map(one, actionable))
    for listing_id, state, error in results:
        outcome.states[listing_id] = state
        if error is not None:
            outcome.errors[listing_id] = error
    return outcome


class LoopSender:
    """The final-price deliveries of a process on one event loop of their own.

    The loop runs on a daemon thread; :meth:`deliver` is called from any worker thread
    and blocks until its batch is done; at most ``bound`` deliveries of all batches are
    in flight at once. :meth:`close` closes the HTTP client and stops the loop.
    """

    def __init__(self, transport: AsyncHttpTransport, bound: int) -> None:
        self.transport = transport
        self.loop = asyncio.new_event_loop()
        self._bound = asyncio.Semaphore(max(1, bound))
        self._thread = threading.Thread(target=self.loop.run_forever, name="final-price-loop",
                                        daemon=True)
        self._thread.start()

    def deliver(
        self, actionable: Sequence[Planned], generations: Mapping[str, int]
    ) -> list[Result]:
        """Every delivery's result, in the order of ``actionable``. A caller interrupted
        while waiting (a time limit) cancels the batch's deliveries still waiting."""
        future: Future[list[Result]] = asyncio.run_coroutine_threadsafe(
            self._all(actionable, generations), self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _all(self, actionable: Sequence[Planned],
                   generations: Mapping[str, int]) -> list[Result]:
        return list(await asyncio.gather(*(
            self._one(planned, generations.get(planned.listing_id, 0))
            for planned in actionable)))

    async def _one(self, planned: Planned, generation: int) -> Result:
        delivery = _delivery(planned, generation)
        if not isinstance(delivery, Delivery):
            return delivery
        async with self._bound:
            try:
                receipt = await self.transport.send(delivery)
            except Exception as exc:  # noqa: BLE001 - judged by _failure, as on a thread
                return _failure(planned, delivery, exc)
        return _success(planned, receipt)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        if self.loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self.transport.aclose(), self.loop)
            try:
                closing.result(timeout=10)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


def _twin(transport: HttpTransport, bound: int) -> AsyncHttpTransport:
    """The async twin of the runtime's Hemnet transport, one kept-alive connection per
    delivery in flight."""
    return AsyncHttpTransport.like(transport, max_connections=max(1, bound))


def _deliver(transport: Transport, planned: Planned, generation: int) -> Result:
    """One listing's delivery on the calling thread; never raises for a failure of the
    marketplace or of this listing's document."""
    delivery = _delivery(planned, generation)
    if not isinstance(delivery, Delivery):
        return delivery
    try:
        receipt = transport.send(delivery)
    except Exception as exc:  # noqa: BLE001 - judged by _failure
        return _failure(planned, delivery, exc)
    return _success(planned, receipt)


def _delivery(planned: Planned, generation: int) -> Delivery | Result:
    """The delivery of ``planned``, or its failure when it has no document to send."""
    if planned.document is None:
        return (planned.listing_id, _failed(planned),
                planned.error or "no document could be built")
    action = DELIVERY_ACTIONS[planned.action]
    return Delivery(
        marketplace=MARKETPLACE,
        listing_id=planned.listing_id,
        office_id=planned.office_id,
        action=action,
        document=planned.document,
        idempotency_key=idempotency_key(
            planned.listing_id, MARKETPLACE, action, document_hash(planned.document), generation
        ),
    )


def _failed(planned: Planned) -> str:
    return "retraction_failed" if planned.action == "retract" else "failed"


def _success(planned: Planned, receipt: Receipt) -> Result:
    if planned.action == "retract":
        return planned.listing_id, "retracted", NOT_KNOWN_NOTE if receipt.not_known else None
    return planned.listing_id, "sent", None


def _failure(planned: Planned, delivery: Delivery, exc: Exception) -> Result:
    """A failed delivery's result, logged with the listing and the marketplace: the
    marketplace's or the document's error as it is; any other exception (a bug of one
    listing must not lose the batch's records) as an unexpected error, with its trace."""
    log = get_logger(listing_id=planned.listing_id, marketplace=MARKETPLACE)
    if isinstance(exc, SyndicationError):
        log.warning("final_price_failed", action=delivery.action, error=str(exc))
        return planned.listing_id, _failed(planned), str(exc)
    log.error("final_price_error", action=delivery.action, exc_info=exc)
    return (planned.listing_id, _failed(planned),
            f"unexpected error: {type(exc).__name__}: {exc}")
