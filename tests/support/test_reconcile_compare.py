"""R13: the pure comparison of a marketplace's inventory with the store, as a table."""

from __future__ import annotations

import factories
import pytest

from adapters.base import RemoteListing
from syndication.reconcile import Difference, StoreView, compare
from syndication.records import Listing, Office, TransferStatus

OFFICE = factories.office_record(licence=("hemnet", "hittahem"))


def listing(state: str = "for_sale", selected: tuple[str, ...] = ("hemnet",)) -> Listing:
    """The factory's listing ``O1`` in ``state``, selected on ``selected``."""
    return factories.listing_record(state=state, marketplaces=selected)


def status(state: str, action: str | None = "create", mid: str | None = "HN-1",
           digest: str | None = "aaa") -> TransferStatus:
    return TransferStatus(listing_id="O1", marketplace="hemnet", state=state, action=action,
                          marketplace_id=mid, document_hash=digest)


def held(digest: str | None = "aaa", listing_id: str = "O1") -> RemoteListing:
    return RemoteListing(listing_id, "HN-1", published=True, document_hash=digest)


Row = tuple[str, str, str | None]


def compared(listing_: Listing | None, status_: TransferStatus | None,
             remote: list[RemoteListing], office: Office = OFFICE) -> list[Row]:
    view = StoreView(
        office=office,
        listings={} if listing_ is None else {"O1": listing_},
        statuses={} if status_ is None else {("O1", "hemnet"): status_},
    )
    return [(d.kind, d.repair, d.reason) for d in compare(view, "hemnet", remote)]


CASES = [
    # in step
    ("published and held", listing(), status("published"), [held()], []),
    ("sent and held", listing(), status("sent"), [held()], []),
    ("never sent, not held", listing(), None, [], []),
    ("deleted, not held", listing("withdrawn"), status("deleted", "delete"), [], []),
    ("not selected, not held", listing(selected=()), status("not_selected", None, None), [], []),
    ("hashes unknown there", listing(), status("published"), [held(None)], []),
    ("transfer in flight", listing(), status("queued"), [], []),
    ("first create failed, not held", listing(), status("failed", "create", None), [], []),
    # missing there
    ("published, gone there", listing(), status("published"), [],
     [("missing_there", "resend", None)]),
    ("failed update, gone there", listing(), status("failed", "update"), [],
     [("missing_there", "resend", None)]),
    ("withdrawn, delete pending, gone there", listing("withdrawn"), status("published"), [],
     [("missing_there", "record_deleted", None)]),
    ("deselected, gone there", listing(selected=()), status("published"), [],
     [("missing_there", "record_deleted", None)]),
    # unknown here
    ("deleted here, still held", listing("withdrawn"), status("deleted", "delete"), [held()],
     [("unknown_here", "delete", "withdrawn")]),
    ("sold, held, store says deleted", listing("sold"), status("deleted", "delete"), [held()],
     [("unknown_here", "delete", "sold")]),
    ("not selected here, held", listing(selected=()), status("not_selected", None, None),
     [held()], [("unknown_here", "delete", "deselected")]),
    ("never recorded, held, wanted", listing(), None, [held()],
     [("unknown_here", "resend", None)]),
    ("not in the store at all", None, None, [held()],
     [("unknown_here", "delete", "deleted")]),
    # stale there
    ("published, other hash there", listing(), status("published"), [held("bbb")],
     [("stale_there", "resend", None)]),
    ("withdrawn, other hash there", listing("withdrawn"), status("published"), [held("bbb")],
     [("stale_there", "delete", "withdrawn")]),
]


@pytest.mark.parametrize(("store_listing", "store_status", "remote", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_compare(store_listing: Listing | None, store_status: TransferStatus | None,
                 remote: list[RemoteListing], expected: list[tuple[str, str, str | None]]) -> None:
    assert compared(store_listing, store_status, remote) == expected


def test_nothing_is_ever_sent_outside_the_licence() -> None:
    unlicensed = factories.office_record(licence=("hittahem",))
    assert compared(listing(), status("published"), [held()], unlicensed) == []
    assert compared(listing(), status("deleted", "delete"), [held()], unlicensed) == [
        ("unknown_here", "none", None)
    ]
    assert compared(listing(), status("published"), [], unlicensed) == [
        ("missing_there", "none", None)
    ]


def test_differences_are_ordered_and_explained() -> None:
    view = StoreView(office=OFFICE, listings={"O1": listing()},
                     statuses={("O1", "hemnet"): status("published")})
    found = compare(view, "hemnet", [held(listing_id="Z9"), held(listing_id="A0")])
    assert [d.listing_id for d in found] == ["A0", "O1", "Z9"]
    assert all(isinstance(d, Difference) and d.detail for d in found)
    assert "Hemnet" in found[1].describe() and found[1].kind == "missing_there"
    assert not found[0].in_store and found[0].marketplace_id == "HN-1"
