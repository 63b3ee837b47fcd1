"""R3 Removal: when a listing must come off a marketplace, and why.

A listing the desktop has withdrawn ("återkallad") or deleted is deleted on
every marketplace where it is published. A sold listing is deleted too, with
the reason ``sold``: a marketplace moves it out of its for-sale lists on that
reason (and Hemnet learns the final price separately, by the nightly sync of
R7, which looks at the listing's history, not at its current row). Every delete
carries its reason (R13): ``withdrawn``, ``deleted``, ``sold`` or
``deselected`` (R2).

Whether a marketplace "holds" a listing is read from the stored transfer
status: ``published`` does, and ``sent`` unless what was sent was a delete;
so does a ``queued`` or ``failed`` row
once the marketplace has given an id or the last action was an update or a
delete (a failed update or delete leaves the old copy in place). Nothing else
does: no row, ``deleted``, ``not_selected``, ``not_licensed``, or a first
create that never got through.
"""

from __future__ import annotations

from syndication.records import Listing, TransferStatus

DELETE_REASONS: tuple[str, ...] = ("sold", "withdrawn", "deleted", "deselected")
REASON_WORDS: dict[str, str] = {
    "sold": "sold", "withdrawn": "withdrawn in the desktop",
    "deleted": "deleted in the desktop", "deselected": "deselected",
}
"""Each delete reason as the status note and the reports write it for people."""


def reason_note(reason: str | None) -> str | None:
    """The note a ``deleted`` row keeps: why it was deleted (``None`` without a reason)."""
    return f"deleted: {REASON_WORDS.get(reason, reason)}" if reason else None

_PENDING_STATES = frozenset({"queued", "failed"})


def removal_reason(listing: Listing) -> str | None:
    """Why the listing must come off every marketplace (``withdrawn``, ``deleted``
    or ``sold``), or ``None`` while it is coming or for sale."""
    if listing.state in ("withdrawn", "deleted", "sold"):
        return listing.state
    return None


def marketplace_holds(current: TransferStatus | None) -> bool:
    """True when, by the stored status, the marketplace has a copy of the listing."""
    if current is None:
        return False
    if current.state == "published":
        return True
    if current.state == "sent":
        return current.action != "delete"
    if current.state in _PENDING_STATES:
        return current.marketplace_id is not None or current.action in ("update", "delete")
    return False
