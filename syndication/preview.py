"""Preview: the document the next transfer would send for a listing to one marketplace.

:func:`preview` walks the same path as a transfer job without sending or
recording anything: the stored status (a pending ``queued`` read as the state
before it), :func:`syndication.rules.plan.decide`, the marketplace's
preconditions (R12), its builder or delete builder, and the comparison with
the hash of the last document the marketplace accepted (R10). Support uses it
to answer "what exactly would Hemnet get?" and "why would nothing be sent?".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from syndication import registry
from syndication.errors import InputError, PreconditionsUnmet
from syndication.records import TransferStatus
from syndication.rules.plan import Decision
from syndication.store.db import session_scope
from syndication.store.repository import load_feed_input
from syndication.transfer.common import settled_status
from syndication.transfer.outgoing import outgoing


@dataclass(frozen=True, slots=True)
class Preview:
    """What the next transfer of ``listing_id`` to ``marketplace`` would do.

    ``document`` is the validated document it would send, or ``None`` when it
    would send nothing; ``reason`` then says why (not licensed, not selected,
    withdrawn and never published, preconditions unmet, unchanged since the last
    delivery, …).
    """

    listing_id: str
    marketplace: str
    decision: Decision
    document: bytes | None
    reason: str

    @property
    def action(self) -> str:
        """``create``, ``update`` or ``delete`` when a document would go, else ``none``."""
        return self.decision.action if self.document is not None else "none"


def preview(engine: Engine, listing_id: str, marketplace: str) -> Preview:
    """The preview of the next transfer; :class:`InputError` when the listing is not stored,
    :class:`~syndication.errors.UnknownMarketplace` for a marketplace with no registry entry."""
    entry = registry.get(marketplace)
    with session_scope(engine) as session:
        feed_input = load_feed_input(session, listing_id)
        current = settled_status(session, listing_id, marketplace)
    if feed_input is None:
        raise InputError("is not in the store", record=f"listing {listing_id!r}")
    planned = outgoing(feed_input, marketplace, current)
    decision = planned.decision

    def nothing(reason: str) -> Preview:
        return Preview(listing_id, marketplace, decision, None, reason)

    if not decision.sends:
        return nothing(decision.reason)
    if isinstance(planned.failure, PreconditionsUnmet):
        return nothing(
            f"the listing does not meet {entry.title}'s conditions, so the "
            f"transfer would record it failed: {'; '.join(planned.failure.unmet)}"
        )
    if planned.failure is not None:
        return nothing(f"the document cannot be built, so the transfer would fail: "
                       f"{planned.failure}")
    if planned.unchanged:
        return nothing(f"unchanged since the last delivery to {entry.title}{_when(current)}")
    return Preview(listing_id, marketplace, decision, planned.document, decision.reason)


def _when(current: TransferStatus | None) -> str:
    if current is None or current.at is None:
        return ""
    return f" ({current.state} {current.at:%Y-%m-%d %H:%M} UTC)"
