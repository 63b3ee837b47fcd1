"""What the next transfer of a listing to a marketplace would send: one function for all.

A transfer job, ``syndication preview``, the full-feed export and a
reconciliation repair all need the same answer, and :func:`outgoing` is the
only place it is worked out:

1. :func:`syndication.rules.plan.decide` — send at all, and which action;
2. for a create or update, the marketplace's publication conditions (R12):
   any unmet is a failure with every unmet condition, and nothing is built;
3. the document, built and validated by the registry entry (a delete with
   the decision's reason);
4. its hash, compared with the one the marketplace accepted last (R10): the
   same document again is ``unchanged``, and nothing is sent.

It is pure apart from the clock-free registry builders: the caller reads the
listing and its settled status, and records or shows the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from syndication import registry
from syndication.errors import PreconditionsUnmet, SyndicationError
from syndication.records import FeedInput, TransferStatus
from syndication.rules.plan import Decision, decide
from syndication.transfer.keys import document_hash


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The answer of :func:`outgoing`.

    ``failure`` is set when the transfer would record ``failed`` without
    sending (conditions unmet, a document that cannot be built); ``document``
    and ``digest`` when a document was built; ``unchanged`` when it is the very
    document the marketplace already holds.
    """

    decision: Decision
    document: bytes | None = None
    digest: str | None = None
    failure: SyndicationError | None = None
    unchanged: bool = False

    @property
    def sends(self) -> bool:
        """True when the transfer would deliver ``document``."""
        return self.document is not None and not self.unchanged


def outgoing(
    feed_input: FeedInput,
    marketplace: str,
    current: TransferStatus | None,
    *,
    build: bool = True,
) -> Outgoing:
    """What the next transfer of ``feed_input``'s listing to ``marketplace`` would send.

    ``current`` is the pair's settled status (``None`` when nothing was ever
    settled). With ``build=False`` it stops after the conditions: the export
    builds feed entries rather than whole documents and needs only to know
    that the listing would be published.
    """
    decision = decide(feed_input, marketplace, current)
    if not decision.sends:
        return Outgoing(decision)
    entry = registry.get(marketplace)
    listing_id = feed_input.listing.id
    try:
        if decision.action == "delete":
            if not build:
                return Outgoing(decision)
            document = entry.build_delete(feed_input, decision.delete_reason or "deleted")
        else:
            unmet = entry.preconditions(feed_input)
            if unmet:
                raise PreconditionsUnmet(unmet, listing_id=listing_id, marketplace=marketplace)
            if not build:
                return Outgoing(decision)
            document = entry.build(feed_input)
    except SyndicationError as exc:
        return Outgoing(decision, failure=exc)
    digest = document_hash(document)
    unchanged = (
        decision.action == "update" and current is not None and current.document_hash == digest
    )
    return Outgoing(decision, document, digest, unchanged=unchanged)
