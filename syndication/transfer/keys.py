"""The identity of a delivery: the document's hash and the idempotency key it travels with.

Every delivery to a marketplace — a transfer job's create, update or delete,
a reconciliation's re-send, the nightly final price — carries a key from
:func:`idempotency_key`, in one format, so a marketplace (and a person reading
its logs) sees one scheme. The same key must never create a second listing: a
delivery repeated after a crash carries the same key and is answered from the
first answer (R10).
"""

from __future__ import annotations

from feeds.common import document_hash

__all__ = ["document_hash", "idempotency_key"]


def idempotency_key(
    listing_id: str,
    marketplace: str,
    action: str,
    digest: str,
    generation: int = 0,
    *,
    run: str | None = None,
) -> str:
    """The key of one delivery: ``listing:marketplace:action:hash16:generation[:run]``.

    A redelivered job builds the same document in the same ``generation`` and
    so carries the same key. ``generation`` counts the deliveries the
    marketplace already accepted for the pair (for final prices, the prices it
    accepted): after a delete, an update or a price that went A → B → A, the
    same document sent again is a new delivery with a new key, not a replay of
    a stale answer. ``run`` names a delivery that must not be answered from an
    earlier one even with the same document and generation — a reconciliation
    re-sending a listing the marketplace lost — and is stable across the HTTP
    retries of that run.
    """
    key = f"{listing_id}:{marketplace}:{action}:{digest[:16]}:{generation}"
    return f"{key}:{run}" if run else key
