"""Hemnet: the listing document, the delete document and the full-feed entries.

Format ``schemas/hemnet-listing-1.0.xsd`` (our model; Hemnet's real
specification is private): English camel-case names, the address, pricing,
texts, images, viewings, broker and agency each in their own element. The
listing element is built once (:func:`listing_element`) and used both as the
create/update document and as an entry of the full feed. An image carries the
photographer's tag as its ``category`` (floor plan, map, exterior) through
``syndication/data/image_categories.toml``.
"""

from __future__ import annotations

from lxml import etree

from feeds.common import (
    Document,
    decimal,
    has_text,
    kronor_only,
    timestamp,
)
from syndication.errors import InputError
from syndication.records import FeedInput
from syndication.rules.object_types import object_type
from syndication.rules.portrait import contact_email, portrait_url

NAME = "hemnet"
SCHEMA = "hemnet-listing-1.0.xsd"
VERSION = "1.0"
FEED_ROOT = "listingFeed"

STATUS = {"coming": "coming", "for_sale": "forSale"}
PRICE_TYPES = {
    "asking": "startingPrice",
    "accepted": "acceptedPrice",
    "fixed": "fixedPrice",
    "tender": "bidding",
    "none": "noPrice",
}
HOUSING = frozenset({"villa", "radhus", "parhus", "kedjehus", "bostadsratt", "fritidshus"})
"""Categories that are homes: Hemnet needs their living area."""
PRICELESS = frozenset({"none", "tender"})
MAX_IMAGES = 100
MAX_VIEWINGS = 50


def status(feed_input: FeedInput) -> str:
    """Hemnet's status word; only coming and for-sale listings are published."""
    listing = feed_input.listing
    try:
        return STATUS[listing.state]
    except KeyError:
        raise InputError(
            f"a {listing.state} listing is not published on Hemnet",
            record=f"listing '{listing.id}'",
            field="state",
        ) from None


def listing_element(doc: Document, feed_input: FeedInput) -> etree._Element:
    """The ``<listing>`` element of ``feed_input`` (no version: the caller adds it)."""
    listing, office, broker = feed_input.listing, feed_input.office, feed_input.broker
    root = etree.Element("listing")
    doc.sub(root, "externalId", listing.id)
    doc.optional(root, "systemId", listing.system_id)
    kind = object_type(listing, NAME)
    doc.sub(root, "objectType", kind.name, attrib={"code": kind.code})
    doc.sub(root, "status", status(feed_input))

    address = etree.SubElement(root, "address")
    doc.sub(address, "streetAddress", listing.street, name="street", limit=100)
    doc.sub(address, "postalCode", listing.postal_code, name="postal_code", limit=10)
    doc.sub(address, "city", listing.city, name="city", limit=60)
    doc.sub(address, "municipality", listing.municipality, name="municipality", limit=60)
    doc.sub(address, "area", listing.area, name="area", limit=100)
    if listing.latitude is not None and listing.longitude is not None:
        coordinates = etree.SubElement(root, "coordinates")
        doc.optional(coordinates, "latitude", listing.latitude, decimal(7))
        doc.optional(coordinates, "longitude", listing.longitude, decimal(7))

    pricing = etree.SubElement(root, "pricing")
    doc.sub(pricing, "priceType", PRICE_TYPES.get(listing.price_type, listing.price_type))
    if listing.price_type != "none":
        doc.optional(pricing, "price", listing.price)
    doc.optional(pricing, "monthlyFee", listing.monthly_fee)

    doc.optional(root, "livingArea", listing.living_area, decimal(1))
    doc.optional(root, "plotArea", listing.plot_area, decimal(1))
    doc.optional(root, "rooms", listing.rooms, decimal(1))
    doc.optional(root, "buildYear", listing.build_year)

    texts = etree.SubElement(root, "texts")
    doc.sub(texts, "title", listing.headline, name="headline", limit=100)
    doc.sub(
        texts, "shortDescription", listing.short_description, name="short_description", limit=500
    )
    doc.sub(texts, "description", listing.description, name="description", limit=20000)

    images = etree.SubElement(root, "images")
    for position, url, image in doc.images(listing, MAX_IMAGES):
        element = etree.SubElement(images, "image", order=str(position))
        doc.image_category(element, image)
        doc.sub(element, "url", url)
        doc.sub(element, "caption", image.caption, name=f"image {position} caption", limit=200)

    if listing.viewings:
        viewings = etree.SubElement(root, "viewings")
        for viewing in doc.first(listing.viewings, MAX_VIEWINGS, "viewings"):
            element = etree.SubElement(viewings, "viewing")
            doc.optional(element, "startTime", viewing.starts_at, timestamp)
            doc.optional(element, "endTime", viewing.ends_at, timestamp)
            doc.sub(element, "comment", viewing.note, name="viewing note", limit=200)

    doc.optional(root, "contactEmail", contact_email(feed_input))
    broker_name = doc.text(broker.name, "broker name", 100) if broker is not None else None
    if broker is not None and broker_name is not None:
        element = etree.SubElement(root, "broker", brokerId=broker.id)
        etree.SubElement(element, "name").text = broker_name  # cleaned and cut already
        doc.sub(element, "title", broker.title, name="broker title", limit=100)
        doc.optional(element, "email", broker.email or None)
        doc.sub(element, "phone", broker.phone, name="broker phone", limit=40)
        doc.optional(element, "portraitUrl", portrait_url(broker))

    agency = etree.SubElement(root, "agency", agencyId=office.id)
    doc.sub(agency, "name", office.name, name="office name", limit=100)
    doc.optional(agency, "logoUrl", doc.office_logo(office))
    doc.sub(agency, "phone", office.phone, name="office phone", limit=40)
    doc.optional(agency, "email", office.email or None)
    doc.optional(agency, "website", office.website or None)
    return root


def document(doc: Document, feed_input: FeedInput) -> etree._Element:
    """The root of the create/update document of ``feed_input``'s listing."""
    root = listing_element(doc, feed_input)
    root.set("version", VERSION)
    return root


def delete_document(doc: Document, fi: FeedInput, reason: str) -> etree._Element:
    """The delete document; ``reason`` is sold, withdrawn, deselected or deleted."""
    root = etree.Element("deleteListing", version=VERSION)
    doc.sub(root, "externalId", fi.listing.id)
    doc.sub(root, "agencyId", fi.office.id)
    doc.sub(root, "reason", reason)
    return root


def feed_header(office_id: str) -> list[etree._Element]:
    """The elements that open the feed before the listings: none in this format."""
    return []


def feed_root(office_id: str) -> list[tuple[str, dict[str, str]]]:
    """The elements that enclose the listings of the full feed, outermost first."""
    return [(FEED_ROOT, {"version": VERSION, "agencyId": office_id})]


def preconditions(feed_input: FeedInput) -> list[str]:
    """Every condition Hemnet sets for publication that the listing does not meet (R12)."""
    listing = feed_input.listing
    unmet: list[str] = []
    if not any(has_text(image.url) for image in listing.images):
        unmet.append("images: at least one image is required (minst en bild krävs)")
    if listing.price_type not in PRICELESS and listing.price is None:
        unmet.append("price: a price is required unless the price type is tender or none")
    if not has_text(listing.street):
        unmet.append("street: a street address is required (gatuadress saknas)")
    if not has_text(listing.municipality):
        unmet.append("municipality: the municipality is required (kommun saknas)")
    if listing.category in HOUSING and not listing.living_area:
        unmet.append(f"living_area: a {listing.category} needs its living area (boarea saknas)")
    if not has_text(feed_input.office.name):
        unmet.append("office: the agency name is required")
    unmet.extend(kronor_only(listing, "Hemnet"))
    return unmet
