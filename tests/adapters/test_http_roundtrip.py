"""The HTTP transport against the sandbox marketplaces, over real HTTP on
127.0.0.1: round trips, idempotent replay, and answers that must not be retried."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date

import pytest
from transport_helpers import TOKEN, delivery, listing

from adapters.base import Delivery
from feeds import hemnet_final_price
from syndication import registry
from syndication.errors import Rejected

MARKETPLACES = registry.push_names()
PREFIXES = {"hemnet": "HN", "blocket": "BB", "hittahem": "HH"}


@pytest.mark.parametrize("name", MARKETPLACES)
def test_create_update_delete_round_trip(sandbox, make_transport, name):
    transport = make_transport(name)
    created = transport.send(delivery(name, "create"))
    assert created.marketplace_id.startswith(PREFIXES[name])
    assert created.public_url.endswith(created.marketplace_id)
    assert created.published

    changed = listing(headline="Nu med nytt badrum")
    updated = transport.send(delivery(name, "update", changed))
    assert updated.marketplace_id == created.marketplace_id
    remote = transport.lookup(name, "OBJ-1")
    assert remote.marketplace_id == created.marketplace_id
    assert remote.document_hash == _sha256(delivery(name, "update", changed).document)
    assert [r.listing_id for r in transport.inventory(name, "KTR-TEST")] == ["OBJ-1"]
    assert transport.inventory(name, "KTR-OTHER") == []

    deleted = transport.send(delivery(name, "delete", reason="sold"))
    assert not deleted.published
    assert transport.lookup(name, "OBJ-1") is None
    market = sandbox[name]
    assert market.creations["OBJ-1"] == 1
    assert market.deletions["OBJ-1"] == 1
    assert market.delete_reasons["OBJ-1"]
    assert [r.action for r in market.documents(listing_id="OBJ-1")] == [
        "create",
        "update",
        "delete",
    ]


def test_every_call_carries_its_idempotency_key(sandbox, make_transport):
    transport = make_transport("blocket")
    sent = [delivery("blocket", "create"), delivery("blocket", "delete")]
    for item in sent:
        transport.send(item)
    assert [r.idempotency_key for r in sandbox["blocket"].documents()] == [
        d.idempotency_key for d in sent
    ]


def test_publication_follows_the_delay(sandbox, make_transport):
    sandbox.set_publish_delay(3600)
    transport = make_transport("hemnet")
    receipt = transport.send(delivery("hemnet"))
    assert not receipt.published
    assert not transport.lookup("hemnet", "OBJ-1").published
    sandbox.set_publish_delay(0)
    assert transport.lookup("hemnet", "OBJ-1").published


def test_same_key_twice_creates_once_and_replays_the_first_answer(sandbox, make_transport):
    transport = make_transport("hemnet")
    first = transport.send(delivery("hemnet"))
    again = transport.send(delivery("hemnet"))
    assert again == first
    assert sandbox["hemnet"].creations["OBJ-1"] == 1
    assert sandbox["hemnet"].replays == 1


def test_a_new_key_for_a_create_is_a_second_creation(sandbox, make_transport):
    """The counter that proves "nothing created twice" does see duplicates."""
    transport = make_transport("hemnet")
    transport.send(delivery("hemnet", key="first"))
    transport.send(delivery("hemnet", key="second"))
    assert sandbox["hemnet"].creations["OBJ-1"] == 2


def test_a_key_reused_for_another_document_is_rejected(sandbox, make_transport):
    transport = make_transport("hemnet")
    transport.send(delivery("hemnet", key="k1"))
    with pytest.raises(Rejected, match="reused"):
        transport.send(delivery("hemnet", "update", listing(headline="Annan text"), key="k1"))


@pytest.mark.parametrize("name", MARKETPLACES)
def test_an_invalid_document_is_rejected_with_the_validation_message(
    sandbox, make_transport, waits, name
):
    good = delivery(name)
    bad = Delivery(name, "OBJ-1", "KTR-TEST", "create", b"<listing><x/></listing>", "bad-1")
    transport = make_transport(name)
    with pytest.raises(Rejected) as caught:
        transport.send(bad)
    assert "422" in caught.value.message and "validate" in caught.value.message
    assert (caught.value.listing_id, caught.value.marketplace) == ("OBJ-1", name)
    assert sandbox[name].call_count("OBJ-1", "create") == 1
    assert waits == []
    assert transport.send(good).marketplace_id


def test_a_document_with_a_doctype_is_refused_by_the_sandbox(sandbox, make_transport):
    hostile = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><listing>&a;</listing>'
    transport = make_transport("hemnet")
    with pytest.raises(Rejected, match="400.*DOCTYPE"):
        transport.send(Delivery("hemnet", "OBJ-1", "KTR-TEST", "create", hostile, "dt-1"))
    assert sandbox["hemnet"].creations["OBJ-1"] == 0


def test_a_listing_the_marketplace_rejects_carries_its_message(sandbox, make_transport, waits):
    sandbox["hittahem"].reject("OBJ-1", "Objektet saknar energideklaration")
    transport = make_transport("hittahem")
    with pytest.raises(Rejected, match="hittahem answered 422: Objektet saknar energideklaration"):
        transport.send(delivery("hittahem"))
    assert sandbox["hittahem"].call_count("OBJ-1") == 1 and waits == []
    sandbox["hittahem"].accept("OBJ-1")
    assert transport.send(delivery("hittahem")).marketplace_id.startswith("HH")


def test_a_wrong_token_is_rejected_not_retried(sandbox, make_transport, waits):
    transport = make_transport("blocket", token="not-" + TOKEN)
    with pytest.raises(Rejected, match="401.*token_env"):
        transport.send(delivery("blocket"))
    assert sandbox["blocket"].call_count() == 1 and waits == []


def test_deleting_what_the_marketplace_does_not_hold_succeeds(sandbox, make_transport):
    receipt = make_transport("hemnet").send(delivery("hemnet", "delete"))
    assert receipt.marketplace_id is None and "nothing to remove" in receipt.message
    assert receipt.not_known, "a 404 to a removal is marked, so the status can say so"


def test_hemnet_receives_final_prices_and_retractions(sandbox, make_transport):
    sold = replace(
        listing().listing, state="sold", final_price=3_400_000, contract_date=date(2026, 10, 3)
    )
    document = hemnet_final_price.build_final_price(sold)
    transport = make_transport("hemnet")
    receipt = transport.send(
        Delivery("hemnet", sold.id, sold.office_id, "final_price", document, "fp")
    )
    assert receipt.message == "final price received"
    assert sandbox["hemnet"].final_price(sold.id) == document

    retraction = hemnet_final_price.build_retraction(sold.id, sold.office_id)
    transport.send(
        Delivery("hemnet", sold.id, sold.office_id, "final_price_retraction", retraction, "fpr")
    )
    assert sandbox["hemnet"].final_price(sold.id) is None
    assert [r.action for r in sandbox["hemnet"].documents()] == [
        "final_price",
        "final_price_retraction",
    ]


def test_only_hemnet_takes_final_prices(sandbox, make_transport):
    sold = replace(listing().listing, final_price=1, contract_date=date(2026, 10, 3))
    document = hemnet_final_price.build_final_price(sold)
    with pytest.raises(Rejected, match="takes no final prices"):
        make_transport("blocket").send(
            Delivery("blocket", sold.id, sold.office_id, "final_price", document, "fp")
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
