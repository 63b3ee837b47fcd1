"""Golden files: the exact bytes each marketplace gets for a few listings.

Regenerate after a deliberate format change with ``UPDATE_GOLDEN=1 pytest
tests/feeds`` and review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from feed_samples import PULL, SAMPLES, samples_for
from lxml import etree

from feeds.validate import validate
from syndication import registry

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

PUSH = tuple(name for name in registry.names() if name not in PULL)
"""Marketplaces that take one document per listing, deletes included."""
CASES = [(m, s) for m in registry.names() for s in samples_for(m)]


def check_golden(name: str, document: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(document)
    assert path.exists(), f"no golden file {name}; run with UPDATE_GOLDEN=1"
    assert document == path.read_bytes(), f"{name} differs from its golden file"


@pytest.mark.parametrize(("marketplace", "sample"), CASES)
def test_listing_document_matches_its_golden_file(marketplace: str, sample: str) -> None:
    entry = registry.get(marketplace)
    feed_input = samples_for(marketplace)[sample]
    assert entry.preconditions(feed_input) == []
    document = entry.build(feed_input)
    validate(entry.schema, document)
    assert entry.build(feed_input) == document, "same input must give the same bytes"
    check_golden(f"{marketplace}-{sample}.xml", document)


@pytest.mark.parametrize("marketplace", PUSH)
@pytest.mark.parametrize("reason", ["sold", "withdrawn", "deselected", "deleted"])
def test_delete_document_validates_and_matches(marketplace: str, reason: str) -> None:
    entry = registry.get(marketplace)
    document = entry.build_delete(SAMPLES["villa-portrait"], reason)
    validate(entry.schema, document)
    if reason == "sold":
        check_golden(f"{marketplace}-delete-sold.xml", document)


def text_of(document: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(document).xpath(path)]


def test_farm_without_farming_is_hemnet_330() -> None:
    document = registry.get("hemnet").build(SAMPLES["farm-330"])
    assert text_of(document, "/listing/objectType/@code") == ["330"]
    assert text_of(document, "/listing/objectType/text()") == ["Gård utan bruk"]
    farming = registry.get("hemnet").build(SAMPLES["farm-farming-no-broker"])
    assert text_of(farming, "/listing/objectType/@code") == ["320"]


PORTRAIT_PATHS = {
    "hemnet": "//broker/portraitUrl/text()",
    "blocket": "//maklare_bild/text()",
    "hittahem": "//agent/photo/@href",
}
LOGO_PATHS = {"hemnet": "//agency/logoUrl/text()", "hittahem": "//agency/logo/@href"}
EMAIL_PATHS = {
    "hemnet": "/listing/contactEmail/text()",
    "blocket": "//kontakt_epost/text()",
    "hittahem": "//contact/email/text()",
}


@pytest.mark.parametrize("marketplace", PUSH)
def test_portrait_only_for_a_broker_shown_on_the_internet(marketplace: str) -> None:
    entry = registry.get(marketplace)
    shown = entry.build(SAMPLES["villa-portrait"])
    hidden = entry.build(SAMPLES["bostadsratt-hidden-broker"])
    assert text_of(shown, PORTRAIT_PATHS[marketplace]) == [
        "https://media.example.se/u/anna/portratt-1.jpg"
    ]
    assert text_of(hidden, PORTRAIT_PATHS[marketplace]) == []
    assert b"signatur" not in shown


@pytest.mark.parametrize("marketplace", PUSH)
def test_contact_email_is_the_brokers_card_email(marketplace: str) -> None:
    document = registry.get(marketplace).build(SAMPLES["villa-portrait"])
    assert text_of(document, EMAIL_PATHS[marketplace]) == ["anna.lindqvist@maklarhuset.example.se"]
    no_broker = registry.get(marketplace).build(SAMPLES["farm-farming-no-broker"])
    assert text_of(no_broker, EMAIL_PATHS[marketplace]) == ["info@norrlandsmaklarna.example.se"]


def test_blocket_never_gets_the_logo_the_others_do() -> None:
    blocket = registry.get("blocket").build(SAMPLES["villa-portrait"])
    assert b"logo.png" not in blocket
    assert not registry.get("blocket").receives_logo
    for name, path in LOGO_PATHS.items():
        document = registry.get(name).build(SAMPLES["villa-portrait"])
        assert text_of(document, path) == ["https://media.example.se/kontor/soder/logo.png"]
        assert registry.get(name).receives_logo
        no_logo = registry.get(name).build(SAMPLES["bostadsratt-hidden-broker"])
        assert text_of(no_logo, path) == []


@pytest.mark.parametrize("marketplace", PUSH)
def test_images_are_sent_in_their_order(marketplace: str) -> None:
    document = registry.get(marketplace).build(SAMPLES["villa-portrait"])
    urls = [u for u in text_of(document, "//*[self::url or self::image]/@href | //url/text()")]
    assert urls[:3] == [f"https://media.example.se/objekt/OBJ-1001/{n}.jpg" for n in (2, 1, 0)]
