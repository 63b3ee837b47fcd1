"""Schema validation messages and the hardened parser for documents from outside."""

from __future__ import annotations

import pytest
from lxml import etree

from feeds.validate import parse_untrusted, schema, validate
from syndication import registry
from syndication.errors import DocumentInvalid, PermanentError

SCHEMAS = [
    "hemnet-listing-1.0.xsd",
    "blocket-listing-1.0.xsd",
    "hittahem-listing-1.0.xsd",
    "kyero-3.0.xsd",
]


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_compiles_once(name: str) -> None:
    assert schema(name) is schema(name)


def test_registry_names_existing_schemas() -> None:
    assert sorted(registry.get(n).schema for n in registry.names()) == sorted(SCHEMAS)


def test_invalid_document_names_line_and_element() -> None:
    document = b"""<?xml version="1.0"?>
<deleteListing version="1.0">
  <externalId>OBJ1</externalId>
  <agencyId>K1</agencyId>
  <reason>lost</reason>
</deleteListing>
"""
    with pytest.raises(DocumentInvalid) as caught:
        validate("hemnet-listing-1.0.xsd", document, listing_id="OBJ1", marketplace="hemnet")
    message = str(caught.value)
    assert "line 5" in message and "Element 'reason'" in message and "lost" in message
    assert caught.value.listing_id == "OBJ1" and caught.value.marketplace == "hemnet"


def test_missing_version_is_invalid() -> None:
    document = (
        b"<borttag><objektnummer>1</objektnummer><kontor_id>K</kontor_id>"
        b"<orsak>sald</orsak></borttag>"
    )
    with pytest.raises(DocumentInvalid, match="version"):
        validate("blocket-listing-1.0.xsd", document)


def test_a_document_that_is_not_xml_is_invalid() -> None:
    with pytest.raises(DocumentInvalid, match="not well-formed"):
        validate("hittahem-listing-1.0.xsd", b"<hittahem version='1.0'>")


def test_a_blocket_document_with_a_logo_is_invalid() -> None:
    root = etree.fromstring(
        b"<annonser version='1.0' kontor_id='K'><annons><logo>x</logo></annons></annonser>"
    )
    assert not schema("blocket-listing-1.0.xsd").validate(root)


RECEIPT = (
    b'<?xml version="1.0" encoding="UTF-8"?><receipt><id>H-123</id><url>https://x/1</url></receipt>'
)


def test_parse_untrusted_reads_a_plain_receipt() -> None:
    root = parse_untrusted(RECEIPT, "Hemnet receipt")
    assert root.findtext("id") == "H-123"


HOSTILE = {
    "billion laughs": b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>""",
    "external entity": b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>""",
    "external DTD": b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>""",
    "bare doctype": b"<!DOCTYPE receipt><receipt/>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_parse_untrusted_refuses_doctype_and_entities(name: str) -> None:
    with pytest.raises(PermanentError, match="HittaHem receipt") as caught:
        parse_untrusted(HOSTILE[name], "HittaHem receipt")
    assert "root:" not in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [b"", b"<a>", b"<a>&undefined;</a>", b"not xml", b"<a/><b/>"],
)
def test_parse_untrusted_refuses_malformed_input(data: bytes) -> None:
    with pytest.raises(PermanentError, match="Blocket receipt"):
        parse_untrusted(data, "Blocket receipt")


def test_parse_untrusted_refuses_text_instead_of_bytes() -> None:
    with pytest.raises(PermanentError, match="expected bytes"):
        parse_untrusted("<a/>", "receipt")  # type: ignore[arg-type]


def test_parse_untrusted_refuses_huge_nesting() -> None:
    deep = b"<a>" * 100_000 + b"</a>" * 100_000
    with pytest.raises(PermanentError):
        parse_untrusted(deep, "deep receipt")
