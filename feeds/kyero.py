"""Kyero: the full feed of homes abroad that Kyero fetches from the agency (R17).

Format ``schemas/kyero-3.0.xsd``, our contract written from Kyero's published
version 3 schema and narrower than it: ``<root>`` holds one ``<kyero>`` header
(``feed_version`` 3; no generation time, so the same records give the same
bytes) and one ``<property>`` per listing. Kyero is a pull marketplace: it
fetches the whole feed, and a listing leaves Kyero by being left out of it, so
there is no per-listing delete document.

What goes where:

* ``id`` is the listing id, ``ref`` the agency's reference (the system id,
  else the listing id), ``date`` the time the desktop last saved the listing
  (``modified_at``) in UTC, in Kyero's ``YYYY-MM-DD HH:MM:SS`` form;
* the price in whole units of its currency (Kyero takes EUR, GBP and USD),
  ``price_freq`` always ``sale``; the type from the ``[kyero]`` type table
  (R4: a farm with farming is a finca, one without a country house);
* ``town`` is the city, ``province`` the province, ``country`` the English
  name of the ISO code, ``location_detail`` the area;
* the English and Swedish descriptions go in ``desc/en`` and ``desc/sv``.
  Kyero v3 has no headline element, so headlines are not sent;
* images in their order, ``id`` 1, 2, … Kyero takes at most 50 and only
  addresses of gif, jpeg or png files; others are left out with a warning.
  The format has no image categories and nothing for a caption, so neither
  the photographer's tag nor the caption is sent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lxml import etree

from feeds.common import Document, clean_text, decimal, has_text
from syndication.errors import InputError
from syndication.records import FeedInput, Listing
from syndication.rules.object_types import object_type

NAME = "kyero"
SCHEMA = "kyero-3.0.xsd"
FEED_VERSION = "3"
FEED_ROOT = "root"

CURRENCIES = frozenset({"EUR", "GBP", "USD"})
"""The currencies Kyero's format takes."""
COUNTRIES: dict[str, str] = {
    "AD": "Andorra",
    "BG": "Bulgaria",
    "CY": "Cyprus",
    "ES": "Spain",
    "FR": "France",
    "GR": "Greece",
    "HR": "Croatia",
    "IT": "Italy",
    "MT": "Malta",
    "PT": "Portugal",
    "TR": "Turkey",
}
"""The countries whose homes Kyero lists, by ISO 3166-1 code, with the name its feed uses."""
PUBLISHED = frozenset({"for_sale"})
"""Kyero has no "coming" listings: only homes for sale go in the feed."""
PRICELESS = frozenset({"none", "tender"})
MAX_ID = 50
MAX_IMAGES = 50
IMAGE_URL = re.compile(r"(https?|ftp)://[^\r\n]*\.(gif|jpe?g|png|GIF|JPE?G|PNG)")
"""The image addresses Kyero takes (the pattern of its schema, whole address)."""
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
YEARS = range(1900, 2100)
"""Kyero's date form has room for these years only."""


def kyero_date(value: datetime) -> str:
    """``value`` in UTC in Kyero's form; a naive time is taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(DATE_FORMAT)


def country_name(listing: Listing) -> str:
    """The English country name Kyero shows; an input error for a country Kyero does not list."""
    try:
        return COUNTRIES[listing.country]
    except KeyError:
        raise InputError(
            f"Kyero does not list homes in {listing.country!r}",
            record=f"listing '{listing.id}'",
            field="country",
        ) from None


def _modified(listing: Listing) -> str:
    if listing.modified_at is None:
        raise InputError(
            "Kyero needs the time the listing was last saved",
            record=f"listing '{listing.id}'",
            field="modified_at",
        )
    return kyero_date(listing.modified_at)


def _image_urls(doc: Document, listing: Listing) -> list[str]:
    """The image addresses Kyero takes, in the images' order, at most :data:`MAX_IMAGES`."""
    urls: list[str] = []
    for _, url, image in doc.images(listing, len(listing.images)):
        token = " ".join(url.split())
        if not IMAGE_URL.fullmatch(token):
            doc.warnings.append(
                f"images: image {image.order} left out, Kyero takes only gif, jpeg or png "
                "addresses"
            )
        elif len(urls) == MAX_IMAGES:
            doc.warnings.append(f"images: only the first {MAX_IMAGES} images are sent")
            break
        else:
            urls.append(token)
    return urls


def listing_element(doc: Document, feed_input: FeedInput) -> etree._Element:
    """The ``<property>`` element of ``feed_input``, as it stands in the feed."""
    listing = feed_input.listing
    root = etree.Element("property")
    doc.sub(root, "id", listing.id)
    doc.sub(root, "date", _modified(listing))
    doc.sub(root, "ref", listing.system_id or listing.id)
    doc.optional(root, "price", listing.price)
    doc.sub(root, "currency", listing.currency)
    doc.sub(root, "price_freq", "sale")
    doc.sub(root, "type", object_type(listing, NAME).code)
    doc.sub(root, "town", listing.city, name="city", limit=100)
    doc.sub(root, "province", listing.province, name="province", limit=100)
    doc.sub(root, "country", country_name(listing))
    if listing.latitude is not None and listing.longitude is not None:
        location = etree.SubElement(root, "location")
        doc.sub(location, "latitude", decimal(7)(listing.latitude))
        doc.sub(location, "longitude", decimal(7)(listing.longitude))
    doc.sub(root, "location_detail", listing.area, name="area", limit=50)
    doc.optional(root, "beds", listing.bedrooms)
    doc.optional(root, "baths", listing.bathrooms)
    if listing.living_area is not None or listing.plot_area is not None:
        surface = etree.SubElement(root, "surface_area")
        doc.optional(surface, "built", listing.living_area, _whole)
        doc.optional(surface, "plot", listing.plot_area, _whole)
    desc = etree.SubElement(root, "desc")
    doc.sub(desc, "en", listing.description_en, name="description_en", limit=20000)
    doc.sub(desc, "sv", listing.description, name="description", limit=20000)
    images = etree.SubElement(root, "images")
    for position, url in enumerate(_image_urls(doc, listing), start=1):
        image = etree.SubElement(images, "image", id=str(position))
        doc.sub(image, "url", url)
    return root


def _whole(value: float) -> str:
    return str(round(value))


def feed_header(office_id: str) -> list[etree._Element]:
    """The elements that open the feed inside :func:`feed_root`, before the properties."""
    header = etree.Element("kyero")
    etree.SubElement(header, "feed_version").text = FEED_VERSION
    return [header]


def feed_root(office_id: str) -> list[tuple[str, dict[str, str]]]:
    """The elements that enclose the listings of the full feed, outermost first.

    Kyero's root carries no attributes: the feed is the agency's by its address.
    """
    return [(FEED_ROOT, {})]


def document(doc: Document, feed_input: FeedInput) -> etree._Element:
    """A whole Kyero feed holding just ``feed_input``'s listing (what preview shows)."""
    root = etree.Element(FEED_ROOT)
    for element in feed_header(feed_input.office.id):
        root.append(element)
    root.append(listing_element(doc, feed_input))
    return root


def preconditions(feed_input: FeedInput) -> list[str]:
    """Every condition Kyero sets for a listing in the feed that this one does not meet (R12)."""
    listing = feed_input.listing
    unmet: list[str] = []
    if len(listing.id) > MAX_ID:
        unmet.append(f"id: Kyero takes listing ids of at most {MAX_ID} characters")
    if listing.state not in PUBLISHED:
        unmet.append(f"state: Kyero shows only listings for sale, not a {listing.state} one")
    if listing.modified_at is None:
        unmet.append("modified_at: Kyero needs the time the listing was last saved")
    elif listing.modified_at.year not in YEARS:
        unmet.append("modified_at: Kyero takes dates from 1900 to 2099 only")
    if listing.price is None or listing.price_type in PRICELESS:
        unmet.append("price: Kyero needs a price (not tender or no price)")
    if listing.currency not in CURRENCIES:
        unmet.append(
            f"currency: Kyero takes prices in EUR, GBP or USD, not {listing.currency}"
        )
    if not has_text(listing.city):
        unmet.append("city: Kyero needs the town")
    if not has_text(listing.province):
        unmet.append("province: Kyero needs the province (region)")
    if listing.country not in COUNTRIES:
        unmet.append(
            f"country: Kyero lists homes in {', '.join(sorted(COUNTRIES))}, "
            f"not {listing.country}"
        )
    if not has_text(listing.description_en) and not has_text(listing.description):
        unmet.append("description: Kyero needs an English or a Swedish description")
    if not any(_acceptable_image(image.url) for image in listing.images):
        unmet.append("images: Kyero needs at least one gif, jpeg or png image")
    return unmet


def _acceptable_image(url: str) -> bool:
    """True when the image address, once cleaned, is one Kyero takes."""
    return bool(IMAGE_URL.fullmatch(" ".join(clean_text(url)[0].split())))
