"""Listing and office ids are arbitrary text from the desktop: they must reach
the marketplace intact in a URL path and never leave the outbox folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adapters.base import Delivery
from adapters.filedrop import FileDropTransport
from adapters.http import ROUTES
from adapters.sandbox import SandboxMarketplace
from adapters.sandbox.marketplace import _xml_text

ids = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(listing_id=st.text(min_size=1, max_size=300))
def test_a_file_drop_stays_in_its_folder_and_round_trips(listing_id):
    with tempfile.TemporaryDirectory() as folder:
        transport = FileDropTransport(folder)
        document = b"<listing/>"
        transport.send(Delivery("blocket", listing_id, "K", "update", document, "k"))
        written = [p for p in Path(folder).rglob("*") if p.is_file()]
        assert len(written) == 1
        assert written[0].parent == Path(folder) / "blocket"
        assert written[0].read_bytes() == document


@settings(max_examples=200, deadline=None)
@given(listing_id=ids, office_id=ids)
def test_the_sandbox_reads_back_the_ids_the_transport_quotes(listing_id, office_id):
    market = SandboxMarketplace("hemnet", schemas={"listing": "hemnet-listing-1.0.xsd"})
    assume(all(_xml_text(i) for i in (listing_id, office_id)))
    quoted = quote(listing_id, safe="")
    for action in ("create", "update", "delete"):
        method, path = ROUTES[action]
        answer = market.handle(method, path.format(id=quoted), {}, b"")
        assert answer.status == 400
    assert market.handle("GET", f"/listings/{quoted}", {}, b"").status == 404
    inventory = market.handle("GET", f"/offices/{quote(office_id, safe='')}/listings", {}, b"")
    assert inventory.status == 200
    assert sum(market.call_count(listing_id, a) for a in ("create", "update", "delete")) == 3
    assert market.call_count(listing_id, "lookup") == 1
    assert market.call_count(office_id, "inventory") == 1


@given(listing_id=st.text(min_size=1).filter(lambda s: not _xml_text(s)))
def test_ids_xml_cannot_carry_are_refused_not_crashed_on(listing_id):
    market = SandboxMarketplace("blocket", schemas={"listing": "blocket-listing-1.0.xsd"})
    answer = market.handle("GET", f"/listings/{quote(listing_id, safe='')}", {}, b"")
    assert answer.status == 400 and b"control characters" in answer.body
