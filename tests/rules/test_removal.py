"""R3: why a listing comes off the marketplaces, and whether a marketplace holds it."""

from __future__ import annotations

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndication.records import LISTING_STATES, TRANSFER_STATES, TransferStatus
from syndication.rules.removal import marketplace_holds, removal_reason


@pytest.mark.parametrize(
    ("state", "expected"),
    [("coming", None), ("for_sale", None), ("sold", "sold"), ("withdrawn", "withdrawn"),
     ("deleted", "deleted")],
)
def test_removal_reason(state: str, expected: str | None) -> None:
    listing = factories.listing_record(state=state)
    assert removal_reason(listing) == expected


def test_every_listing_state_is_covered() -> None:
    for state in LISTING_STATES:
        removal_reason(factories.listing_record(state=state))


def status(
    state: str, action: str | None = None, marketplace_id: str | None = None
) -> TransferStatus:
    return TransferStatus("O1", "hemnet", state, marketplace_id=marketplace_id, action=action)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, False),
        (status("published", "create", "H1"), True),
        (status("published", "update"), True),
        (status("sent", "create"), True),
        (status("sent", "update", "H1"), True),
        (status("sent", "delete", "H1"), False),
        (status("deleted", "delete", "H1"), False),
        (status("not_selected"), False),
        (status("not_licensed"), False),
        (status("queued", "create"), False),
        (status("queued", "update"), True),
        (status("queued", "delete"), True),
        (status("queued", "create", "H1"), True),
        (status("failed", "create"), False),
        (status("failed", "create", "H1"), True),
        (status("failed", "update"), True),
        (status("failed", "delete"), True),
    ],
)
def test_marketplace_holds(current: TransferStatus | None, expected: bool) -> None:
    assert marketplace_holds(current) is expected


@given(
    state=st.sampled_from(TRANSFER_STATES),
    action=st.none() | st.sampled_from(("create", "update", "delete")),
    marketplace_id=st.none() | st.text(min_size=1, max_size=20),
)
def test_holds_follows_the_state(
    state: str, action: str | None, marketplace_id: str | None
) -> None:
    holds = marketplace_holds(TransferStatus("O1", "hemnet", state, marketplace_id=marketplace_id,
                                             action=action))
    if state == "published":
        assert holds
    if state in ("deleted", "not_selected", "not_licensed"):
        assert not holds
    if state in ("queued", "failed") and marketplace_id is None and action in (None, "create"):
        assert not holds
