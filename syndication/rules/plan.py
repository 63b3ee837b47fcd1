"""The transfer decision: what the next transfer does for one listing on one marketplace.

:func:`decide` combines R1 (licence), R3 (removal, including a sale) and R2
(selection) with the stored status of the listing on the marketplace. It is
pure: the caller loads the records and the status and carries out the
decision. Rows are checked top to bottom; the first that matches wins.

===  ========  ==========================  =====  ======  ================  ==============
row  licensed  listing                     holds  action  state to record   delete reason
===  ========  ==========================  =====  ======  ================  ==============
1    no        selected it                 any    none    ``not_licensed``  —
2    no        did not select it           any    none    — (no row)        —
3    yes       withdrawn / deleted / sold  yes    delete  —                 the state
4    yes       withdrawn / deleted / sold  no     none    — (no row)        —
5    yes       active, not selected        yes    delete  —                 ``deselected``
6    yes       active, not selected        no     none    ``not_selected``  —
7    yes       active, selected            yes    update  —                 —
8    yes       active, selected            no     create  —                 —
===  ========  ==========================  =====  ======  ================  ==============

"Active" is ``coming`` or ``for_sale``; "holds" is whether the marketplace has a
copy by the stored status (:func:`syndication.rules.removal.marketplace_holds`).

Why these rows:

* Licence first (R1): nothing is ever sent outside the licence, not even a
  delete. The office reads its licence afresh at every transfer, so a licence
  change takes effect at the next one. A ``not_licensed`` row is only kept for
  a marketplace the listing selected, so status views show the marketplaces of
  the licence plus the selected unlicensed ones.
* Removal before selection (R3): a listing withdrawn after being deselected
  still carries ``withdrawn``, the truer reason. A sold listing comes off the
  for-sale lists with the reason ``sold`` (the marketplace shows it as sold;
  the final price goes to Hemnet by the nightly sync, R7). A removed listing
  that was never published there needs nothing: no row is written.
* Deselected (R2): a delete first, then the row becomes ``deleted``; if the
  marketplace never had it the row says ``not_selected`` ("not shown there").
* Create when the marketplace holds nothing (never sent, deleted earlier, a
  first create that failed), update when it holds a copy. Whether the new
  document differs from the last one delivered (R10) is the orchestration's
  check against the stored document hash, not this table's.

For actions ``create``, ``update`` and ``delete`` :attr:`Decision.state` is
``None``: the orchestration records ``queued``/``sent``/``published``/
``deleted``/``failed`` as the delivery goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from syndication.records import FeedInput, TransferStatus
from syndication.registry import title
from syndication.rules.licence import is_licensed, not_licensed_message
from syndication.rules.removal import marketplace_holds, removal_reason
from syndication.rules.selection import is_selected


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do for one listing on one marketplace.

    ``action`` is ``create``, ``update``, ``delete`` or ``none``. With ``none``,
    ``state`` is the status to record (``not_licensed``, ``not_selected``) or
    ``None`` for "record nothing". ``reason`` is a sentence for people (support,
    ``syndication preview``); ``delete_reason`` (``sold``, ``withdrawn``,
    ``deleted``, ``deselected``) goes with a delete.
    """

    marketplace: str
    action: str
    state: str | None
    reason: str
    delete_reason: str | None = None

    @property
    def sends(self) -> bool:
        """True when the decision sends a document to the marketplace."""
        return self.action != "none"


def decide(feed_input: FeedInput, marketplace: str, current: TransferStatus | None) -> Decision:
    """The decision for ``feed_input``'s listing on ``marketplace`` given its stored status."""
    listing, office = feed_input.listing, feed_input.office
    name = title(marketplace)
    selected = is_selected(listing, marketplace)

    if not is_licensed(office, marketplace):
        if selected:
            message = not_licensed_message(office, marketplace)
            return Decision(marketplace, "none", "not_licensed", message)
        return Decision(
            marketplace, "none", None, f"not in the office's licence and not selected for {name}"
        )

    holds = marketplace_holds(current)
    removed = removal_reason(listing)
    if removed is not None:
        word = removed
        if holds:
            return Decision(
                marketplace, "delete", None, f"listing {word}: delete it from {name}", removed
            )
        if current is not None and current.state == "deleted":
            already = f"listing {word}; already deleted from {name}"
            return Decision(marketplace, "none", None, already)
        return Decision(marketplace, "none", None, f"listing {word} and never published on {name}")

    if not selected:
        if holds:
            return Decision(
                marketplace,
                "delete",
                None,
                f"no longer selected for {name}: delete it there",
                "deselected",
            )
        return Decision(marketplace, "none", "not_selected", f"not selected: not shown on {name}")

    if holds:
        return Decision(marketplace, "update", None, f"selected and already on {name}: update it")
    return Decision(marketplace, "create", None, f"selected and not yet on {name}: create it")
