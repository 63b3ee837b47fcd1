"""Blocket Bostad: the ``annons`` document, the ``borttag`` document and the feed entries.

Format ``schemas/blocket-listing-1.0.xsd`` (our model; Blocket's real
specification is private): flat Swedish element names, one element per field.
The office logo is never sent (R6): the agency sends it to Blocket itself, and
the format has no place for it. The format has no image categories either, so
a photographer's image tag (R11: floor plan, map, exterior) does not go to
Blocket; every ``bild`` is an ordinary photo in its order.
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

NAME = "blocket"
SCHEMA = "blocket-listing-1.0.xsd"
VERSION = "1.0"
FEED_ROOT = "annonser"

STATUS = {"coming": "kommande", "for_sale": "till_salu"}
PRICE_TYPES = {
    "asking": "utgangspris",
    "accepted": "accepterat_pris",
    "fixed": "fast_pris",
    "tender": "anbud",
}
DELETE_REASONS = {
    "sold": "sald",
    "withdrawn": "aterkallad",
    "deselected": "avvald",
    "deleted": "borttagen",
}
MAX_IMAGES = 30
MAX_VIEWINGS = 20


def status(feed_input: FeedInput) -> str:
    """Blocket's status word; only coming and for-sale listings are published."""
    listing = feed_input.listing
    try:
        return STATUS[listing.state]
    except KeyError:
        raise InputError(
            f"a {listing.state} listing is not published on Blocket Bostad",
            record=f"listing '{listing.id}'",
            field="state",
        ) from None


def listing_element(doc: Document, feed_input: FeedInput) -> etree._Element:
    """The ``<annons>`` element of ``feed_input`` (no version: the caller adds it)."""
    listing, office, broker = feed_input.listing, feed_input.office, feed_input.broker
    root = etree.Element("annons")
    doc.sub(root, "objektnummer", listing.id)
    doc.sub(root, "kategori", object_type(listing, NAME).code)
    doc.sub(root, "status", status(feed_input))
    doc.sub(root, "gatuadress", listing.street, name="street", limit=100)
    doc.sub(root, "postnummer", listing.postal_code, name="postal_code", limit=10)
    doc.sub(root, "ort", listing.city, name="city", limit=60)
    doc.sub(root, "kommun", listing.municipality, name="municipality", limit=60)
    doc.sub(root, "omrade", listing.area, name="area", limit=100)
    if listing.latitude is not None and listing.longitude is not None:
        doc.optional(root, "latitud", listing.latitude, decimal(7))
        doc.optional(root, "longitud", listing.longitude, decimal(7))
    doc.optional(root, "pris", listing.price)
    doc.sub(root, "pristyp", PRICE_TYPES.get(listing.price_type, listing.price_type))
    doc.optional(root, "manadsavgift", listing.monthly_fee)
    doc.optional(root, "boarea", listing.living_area, decimal(1))
    doc.optional(root, "tomtarea", listing.plot_area, decimal(1))
    doc.optional(root, "antal_rum", listing.rooms, decimal(1))
    doc.optional(root, "byggar", listing.build_year)
    doc.sub(root, "rubrik", listing.headline, name="headline", limit=60)
    doc.sub(
        root,
        "beskrivning",
        _description(listing.short_description, listing.description),
        name="description",
        limit=10000,
    )
    for position, url, image in doc.images(listing, MAX_IMAGES):
        element = etree.SubElement(root, "bild", ordning=str(position))
        doc.sub(element, "url", url)
        doc.sub(element, "bildtext", image.caption, name=f"image {position} caption", limit=100)
    for viewing in doc.first(listing.viewings, MAX_VIEWINGS, "viewings"):
        element = etree.SubElement(root, "visning")
        doc.optional(element, "start", viewing.starts_at, timestamp)
        doc.optional(element, "slut", viewing.ends_at, timestamp)
        doc.sub(element, "kommentar", viewing.note, name="viewing note", limit=100)
    doc.optional(root, "kontakt_epost", contact_email(feed_input))
    if broker is not None:
        doc.sub(root, "maklare_namn", broker.name, name="broker name", limit=100)
        doc.sub(root, "maklare_telefon", broker.phone, name="broker phone", limit=40)
        doc.optional(root, "maklare_bild", portrait_url(broker))
    doc.sub(root, "kontor_id", office.id)
    doc.sub(root, "kontor_namn", office.name, name="office name", limit=100)
    doc.sub(root, "kontor_telefon", office.phone, name="office phone", limit=40)
    doc.optional(root, "kontor_epost", office.email or None)
    doc.optional(root, "kontor_hemsida", office.website or None)
    return root


def _description(short: str | None, long: str | None) -> str | None:
    """Blocket has one text field: the short description, a blank line, the long one."""
    parts = [part for part in (short, long) if part and part.strip()]
    return "\n\n".join(parts) if parts else None


def document(doc: Document, feed_input: FeedInput) -> etree._Element:
    """The root of the create/update document of ``feed_input``'s listing."""
    root = listing_element(doc, feed_input)
    root.set("version", VERSION)
    return root


def delete_document(doc: Document, fi: FeedInput, reason: str) -> etree._Element:
    """The ``borttag`` document; ``reason`` is sold, withdrawn, deselected or deleted."""
    root = etree.Element("borttag", version=VERSION)
    doc.sub(root, "objektnummer", fi.listing.id)
    doc.sub(root, "kontor_id", fi.office.id)
    doc.sub(root, "orsak", DELETE_REASONS.get(reason, reason))
    return root


def feed_header(office_id: str) -> list[etree._Element]:
    """The elements that open the feed before the listings: none in this format."""
    return []


def feed_root(office_id: str) -> list[tuple[str, dict[str, str]]]:
    """The elements that enclose the listings of the full feed, outermost first."""
    return [(FEED_ROOT, {"version": VERSION, "kontor_id": office_id})]


def preconditions(feed_input: FeedInput) -> list[str]:
    """Every condition Blocket Bostad sets for publication that the listing does not meet."""
    listing = feed_input.listing
    unmet: list[str] = []
    if not any(has_text(image.url) for image in listing.images):
        unmet.append("images: at least one image is required (minst en bild krävs)")
    if listing.price is None:
        unmet.append("price: Blocket Bostad requires a price (pris saknas)")
    elif listing.price_type not in PRICE_TYPES:
        unmet.append(
            f"price_type: Blocket Bostad takes no listing with price type {listing.price_type!r}"
        )
    if not has_text(listing.city):
        unmet.append("city: the city is required (ort saknas)")
    if not has_text(feed_input.office.name):
        unmet.append("office: the office name is required")
    unmet.extend(kronor_only(listing, "Blocket Bostad"))
    return unmet
