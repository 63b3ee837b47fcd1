"""The transfer decision, row by row of the table in ``syndication.rules.plan``."""

from __future__ import annotations

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndication import registry
from syndication.records import (
    LISTING_STATES,
    TRANSFER_STATES,
    FeedInput,
    TransferStatus,
)
from syndication.rules.plan import Decision, decide

MARKETPLACES = registry.names()

PUBLISHED = TransferStatus("O1", "blocket", "published", marketplace_id="B-1", action="create")
DELETED = TransferStatus("O1", "blocket", "deleted", marketplace_id="B-1", action="delete")
FAILED_CREATE = TransferStatus("O1", "blocket", "failed", action="create", error="500")
NOT_SELECTED = TransferStatus("O1", "blocket", "not_selected")


def feed(*, licensed: bool = True, selected: bool = True, state: str = "for_sale") -> FeedInput:
    office = factories.office_record(
        licence=("hemnet", "blocket") if licensed else ("hemnet",)
    )
    listing = factories.listing_record(
        state=state, marketplaces=("hemnet", "blocket") if selected else ("hemnet",)
    )
    return factories.feed_input(listing, office, broker=None)


@pytest.mark.parametrize(
    ("licensed", "selected", "state", "current", "action", "record", "delete_reason"),
    [
        # row 1: not licensed, selected → not_licensed, whatever the marketplace holds
        (False, True, "for_sale", None, "none", "not_licensed", None),
        (False, True, "for_sale", PUBLISHED, "none", "not_licensed", None),
        (False, True, "withdrawn", PUBLISHED, "none", "not_licensed", None),
        # row 2: not licensed, not selected → no row
        (False, False, "for_sale", None, "none", None, None),
        (False, False, "sold", PUBLISHED, "none", None, None),
        # row 3: removed and held → delete with the listing's state as reason
        (True, True, "withdrawn", PUBLISHED, "delete", None, "withdrawn"),
        (True, True, "deleted", PUBLISHED, "delete", None, "deleted"),
        (True, True, "sold", PUBLISHED, "delete", None, "sold"),
        (True, False, "withdrawn", PUBLISHED, "delete", None, "withdrawn"),
        # row 4: removed and not held → nothing
        (True, True, "withdrawn", None, "none", None, None),
        (True, True, "deleted", DELETED, "none", None, None),
        (True, True, "sold", FAILED_CREATE, "none", None, None),
        (True, False, "sold", NOT_SELECTED, "none", None, None),
        # row 5: deselected while held → delete, reason deselected
        (True, False, "for_sale", PUBLISHED, "delete", None, "deselected"),
        (True, False, "coming", PUBLISHED, "delete", None, "deselected"),
        # row 6: not selected, not held → not_selected
        (True, False, "for_sale", None, "none", "not_selected", None),
        (True, False, "coming", DELETED, "none", "not_selected", None),
        # row 7: selected and held → update
        (True, True, "for_sale", PUBLISHED, "update", None, None),
        (True, True, "coming", PUBLISHED, "update", None, None),
        # row 8: selected, not held → create
        (True, True, "for_sale", None, "create", None, None),
        (True, True, "coming", None, "create", None, None),
        (True, True, "for_sale", DELETED, "create", None, None),
        (True, True, "for_sale", FAILED_CREATE, "create", None, None),
        (True, True, "for_sale", NOT_SELECTED, "create", None, None),
    ],
)
def test_decision_table(
    licensed: bool,
    selected: bool,
    state: str,
    current: TransferStatus | None,
    action: str,
    record: str | None,
    delete_reason: str | None,
) -> None:
    decision = decide(feed(licensed=licensed, selected=selected, state=state), "blocket", current)
    assert (decision.action, decision.state, decision.delete_reason) == (
        action,
        record,
        delete_reason,
    )
    assert decision.marketplace == "blocket" and decision.reason


def test_not_licensed_message_says_a_licence_change_is_needed() -> None:
    decision = decide(feed(licensed=False), "blocket", None)
    assert "licence change" in decision.reason and "Blocket" in decision.reason


@pytest.mark.parametrize(
    ("state", "current", "words"),
    [
        ("withdrawn", None, "withdrawn and never published"),
        ("deleted", None, "deleted and never published"),
        ("withdrawn", DELETED, "already deleted"),
        ("for_sale", None, "not yet on"),
    ],
)
def test_reasons_are_readable(state: str, current: TransferStatus | None, words: str) -> None:
    assert words in decide(feed(state=state), "blocket", current).reason


def test_not_selected_reason_says_not_shown() -> None:
    assert "not shown" in decide(feed(selected=False), "blocket", None).reason


def test_licence_change_takes_effect_at_the_next_decision() -> None:
    before = decide(feed(licensed=False), "blocket", None)
    after = decide(feed(licensed=True), "blocket", TransferStatus("O1", "blocket", "not_licensed"))
    assert (before.action, after.action) == ("none", "create")


def test_sends() -> None:
    assert Decision("hemnet", "create", None, "x").sends
    assert not Decision("hemnet", "none", "not_selected", "x").sends


statuses = st.none() | st.builds(
    TransferStatus,
    listing_id=st.just("O1"),
    marketplace=st.just("blocket"),
    state=st.sampled_from(TRANSFER_STATES),
    marketplace_id=st.none() | st.just("B-1"),
    action=st.none() | st.sampled_from(("create", "update", "delete")),
)


@given(
    licence=st.sets(st.sampled_from(MARKETPLACES)),
    selection=st.sets(st.sampled_from(MARKETPLACES)),
    state=st.sampled_from(LISTING_STATES),
    marketplace=st.sampled_from(MARKETPLACES),
    current=statuses,
)
def test_invariants(
    licence: set[str],
    selection: set[str],
    state: str,
    marketplace: str,
    current: TransferStatus | None,
) -> None:
    office = factories.office_record(licence=tuple(licence))
    listing = factories.listing_record(state=state, marketplaces=tuple(selection))
    decision = decide(factories.feed_input(listing, office, broker=None), marketplace, current)
    assert decision.action in ("create", "update", "delete", "none")
    if marketplace not in licence:
        assert decision.action == "none"
        assert decision.state == ("not_licensed" if marketplace in selection else None)
    if decision.action in ("create", "update"):
        assert marketplace in selection and state in ("coming", "for_sale")
    if decision.action == "delete":
        assert decision.delete_reason in ("sold", "withdrawn", "deleted", "deselected")
        assert current is not None and current.state not in ("deleted", "not_selected")
    else:
        assert decision.delete_reason is None
    if decision.action != "none":
        assert decision.state is None
    if state in ("withdrawn", "deleted", "sold"):
        assert decision.action in ("delete", "none")
