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
from syndication.errors import InputError, SyndicationError
from syndication.records import TransferStatus
from syndication.registry import title
from syndication.rules.plan import Decision, decide
from syndication.store.db import session_scope
from syndication.store.repository import load_feed_input
from syndication.transfer.common import document_hash, settled_status


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
    decision = decide(feed_input, marketplace, current)

    def nothing(reason: str) -> Preview:
        return Preview(listing_id, marketplace, decision, None, reason)

    if not decision.sends:
        return nothing(decision.reason)
    try:
        if decision.action == "delete":
            document = entry.build_delete(feed_input, decision.delete_reason or "deleted")
        else:
            unmet = entry.preconditions(feed_input)
            if unmet:
                return nothing(
                    f"the listing does not meet {title(marketplace)}'s conditions, so the "
                    f"transfer would record it failed: {'; '.join(unmet)}"
                )
            document = entry.build(feed_input)
    except SyndicationError as exc:
        return nothing(f"the document cannot be built, so the transfer would fail: {exc}")
    if decision.action == "update" and _unchanged(current, document):
        return nothing(f"unchanged since the last delivery to {title(marketplace)}{_when(current)}")
    return Preview(listing_id, marketplace, decision, document, decision.reason)


def _unchanged(current: TransferStatus | None, document: bytes) -> bool:
    return current is not None and current.document_hash == document_hash(document)


def _when(current: TransferStatus | None) -> str:
    if current is None or current.at is None:
        return ""
    return f" ({current.state} {current.at:%Y-%m-%d %H:%M} UTC)"
