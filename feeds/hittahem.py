"""HittaHem: the ``property`` and ``removal`` documents and the catalogue entries.

Format ``schemas/hittahem-listing-1.0.xsd`` (our model; HittaHem's real
specification is private): one ``<hittahem version="1.0">`` root holding a
``property``, a ``removal`` or a ``catalogue``; a property is nested in groups
(classification, location, economy, size, presentation, media, showings,
contact), with links as ``href`` attributes. An image carries the
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

NAME = "hittahem"
SCHEMA = "hittahem-listing-1.0.xsd"
VERSION = "1.0"
ROOT = "hittahem"

STATUS = {"coming": "COMING", "for_sale": "FOR_SALE"}
MAX_IMAGES = 60
MAX_SHOWINGS = 30


def status(feed_input: FeedInput) -> str:
    """HittaHem's status word; only coming and for-sale listings are published."""
    listing = feed_input.listing
    try:
        return STATUS[listing.state]
    except KeyError:
        raise InputError(
            f"a {listing.state} listing is not published on HittaHem",
            record=f"listing '{listing.id}'",
            field="state",
        ) from None


def _link(doc: Document, parent: etree._Element, tag: str, url: str | None, name: str) -> None:
    href = doc.text(url, name, 2000)
    if href is not None:
        etree.SubElement(parent, tag, href=href)


def listing_element(doc: Document, feed_input: FeedInput) -> etree._Element:
    """The ``<property>`` element of ``feed_input``."""
    listing, office, broker = feed_input.listing, feed_input.office, feed_input.broker
    root = etree.Element("property", id=listing.id)
    system_id = doc.text(listing.system_id, "system_id", 64)
    if system_id is not None:
        root.set("systemId", system_id)

    classification = etree.SubElement(root, "classification")
    doc.sub(classification, "type", object_type(listing, NAME).code)
    doc.sub(classification, "status", status(feed_input))

    location = etree.SubElement(root, "location")
    address = etree.SubElement(location, "address")
    doc.sub(address, "street", listing.street, name="street", limit=100)
    doc.sub(address, "postcode", listing.postal_code, name="postal_code", limit=10)
    doc.sub(address, "town", listing.city, name="city", limit=60)
    doc.sub(location, "municipality", listing.municipality, name="municipality", limit=60)
    doc.sub(location, "district", listing.area, name="area", limit=100)
    if listing.latitude is not None and listing.longitude is not None:
        etree.SubElement(
            location,
            "position",
            lat=decimal(7)(listing.latitude),
            lon=decimal(7)(listing.longitude),
        )

    economy = etree.SubElement(root, "economy")
    doc.sub(economy, "priceKind", listing.price_type.upper())
    if listing.price is not None and listing.price_type != "none":
        doc.sub(economy, "price", str(listing.price), attrib={"currency": "SEK"})
    if listing.monthly_fee is not None:
        doc.sub(economy, "monthlyFee", str(listing.monthly_fee), attrib={"currency": "SEK"})

    size = etree.SubElement(root, "size")
    doc.optional(size, "livingArea", listing.living_area, decimal(1))
    doc.optional(size, "plotArea", listing.plot_area, decimal(1))
    doc.optional(size, "rooms", listing.rooms, decimal(1))
    doc.optional(size, "buildYear", listing.build_year)

    presentation = etree.SubElement(root, "presentation")
    doc.sub(presentation, "headline", listing.headline, name="headline", limit=200)
    doc.sub(presentation, "summary", listing.short_description, name="short_description", limit=500)
    doc.sub(presentation, "body", listing.description, name="description", limit=30000)

    media = etree.SubElement(root, "media")
    for position, href, image in doc.images(listing, MAX_IMAGES):
        element = etree.SubElement(media, "image", position=str(position), href=href)
        doc.image_category(element, image)
        doc.sub(element, "caption", image.caption, name=f"image {position} caption", limit=200)

    if listing.viewings:
        showings = etree.SubElement(root, "showings")
        for viewing in doc.first(listing.viewings, MAX_SHOWINGS, "viewings"):
            element = etree.SubElement(showings, "showing", {"from": timestamp(viewing.starts_at)})
            if viewing.ends_at is not None:
                element.set("to", timestamp(viewing.ends_at))
            doc.sub(element, "note", viewing.note, name="viewing note", limit=200)

    contact = etree.SubElement(root, "contact")
    doc.optional(contact, "email", contact_email(feed_input))
    broker_name = doc.text(broker.name, "broker name", 100) if broker is not None else None
    if broker is not None and broker_name is not None:
        agent = etree.SubElement(contact, "agent", id=broker.id)
        etree.SubElement(agent, "name").text = broker_name  # cleaned and cut already
        doc.sub(agent, "title", broker.title, name="broker title", limit=100)
        doc.sub(agent, "phone", broker.phone, name="broker phone", limit=40)
        _link(doc, agent, "photo", portrait_url(broker), "broker portrait")
    agency = etree.SubElement(contact, "agency", id=office.id)
    doc.sub(agency, "name", office.name, name="office name", limit=100)
    _link(doc, agency, "logo", doc.office_logo(office), "office logo")
    doc.sub(agency, "phone", office.phone, name="office phone", limit=40)
    doc.optional(agency, "email", office.email or None)
    doc.optional(agency, "web", office.website or None)
    return root


def document(doc: Document, feed_input: FeedInput) -> etree._Element:
    """The root of the create/update document of ``feed_input``'s listing."""
    root = etree.Element(ROOT, version=VERSION)
    root.append(listing_element(doc, feed_input))
    return root


def delete_document(doc: Document, fi: FeedInput, reason: str) -> etree._Element:
    """The removal document; ``reason`` is sold, withdrawn, deselected or deleted."""
    root = etree.Element(ROOT, version=VERSION)
    removal = etree.SubElement(root, "removal", id=fi.listing.id, agency=fi.office.id)
    doc.sub(removal, "reason", reason.upper())
    return root


def feed_header(office_id: str) -> list[etree._Element]:
    """The elements that open the feed before the listings: none in this format."""
    return []


def feed_root(office_id: str) -> list[tuple[str, dict[str, str]]]:
    """The elements that enclose the listings of the full feed, outermost first."""
    return [(ROOT, {"version": VERSION}), ("catalogue", {"agency": office_id})]


def preconditions(feed_input: FeedInput) -> list[str]:
    """Every condition HittaHem sets for publication that the listing does not meet (R12)."""
    listing = feed_input.listing
    unmet: list[str] = []
    if not has_text(listing.street):
        unmet.append("street: a street address is required (adress saknas)")
    if not any(has_text(image.url) for image in listing.images):
        unmet.append("images: at least one image is required (minst en bild krävs)")
    if not has_text(listing.description):
        unmet.append("description: a description is required (beskrivning saknas)")
    if not has_text(feed_input.office.name):
        unmet.append("office: the agency name is required")
    unmet.extend(kronor_only(listing, "HittaHem"))
    return unmet
