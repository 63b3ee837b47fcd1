"""The Hemnet final-price ("slutpris") document and its retraction (R7).

Pure builders: a listing in, validated bytes out, the same bytes every time (no
timestamps or run ids inside), so the hash of a document identifies the price it
carries and serves as the idempotency key of its delivery. The format is our own
model, ``schemas/hemnet-final-price-1.0.xsd``; Hemnet's real one is private.

The document carries only what the final-price statistics need — which listing
(our id and the office, as in the listing documents), its category, the price and
the contract date — so it changes exactly when the final price does.
"""

from __future__ import annotations

from lxml import etree

from feeds.validate import validate_element
from syndication.errors import DocumentInvalid
from syndication.records import Listing

SCHEMA = "hemnet-final-price-1.0.xsd"
MARKETPLACE = "hemnet"
VERSION = "1.0"


def _text(parent: etree._Element, tag: str, value: str, listing_id: str) -> None:
    try:
        etree.SubElement(parent, tag).text = value
    except ValueError:
        raise DocumentInvalid(
            f"{tag} {value!r} contains characters XML cannot carry",
            listing_id=listing_id,
            marketplace=MARKETPLACE,
        ) from None


def _finish(root: etree._Element, listing_id: str) -> bytes:
    """The tree validated in memory (no re-parse of its bytes), then serialised once."""
    validate_element(SCHEMA, root, listing_id=listing_id, marketplace=MARKETPLACE)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def build_final_price(listing: Listing) -> bytes:
    """The ``<finalPrice>`` document of a sold listing, validated.

    Raises :class:`DocumentInvalid` when the listing lacks what the document needs
    (a final price, a contract date, a final-price category); the sync checks
    eligibility first, so that means a bug or a record changed under it.
    """
    if listing.final_price is None or listing.contract_date is None:
        raise DocumentInvalid(
            "a final-price document needs a final price and a contract date",
            listing_id=listing.id,
            marketplace=MARKETPLACE,
        )
    root = etree.Element("finalPrice", version=VERSION)
    _text(root, "externalId", listing.id, listing.id)
    _text(root, "agencyId", listing.office_id, listing.id)
    _text(root, "category", listing.category, listing.id)
    price = etree.SubElement(root, "price", currency="SEK")
    price.text = str(listing.final_price)
    etree.SubElement(root, "contractDate").text = listing.contract_date.isoformat()
    return _finish(root, listing.id)


def build_retraction(listing_id: str, office_id: str, reason: str = "consent_withdrawn") -> bytes:
    """The ``<finalPriceRetraction>`` document: Hemnet removes the listing's final price."""
    root = etree.Element("finalPriceRetraction", version=VERSION)
    _text(root, "externalId", listing_id, listing_id)
    _text(root, "agencyId", office_id, listing_id)
    _text(root, "reason", reason, listing_id)
    return _finish(root, listing_id)
