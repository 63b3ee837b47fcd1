"""What the three feed builders share: clean text, element helpers, serialization.

Text from the desktop can carry characters XML 1.0 cannot (control
characters, lone surrogates, U+FFFE/U+FFFF) and can be longer than a
marketplace takes. :class:`Document` removes the former and cuts the latter at
the marketplace's limit, and records a warning for each — never silently. lxml
does all escaping; documents are serialized the same way every time (UTF-8,
declaration, indented), so the same input gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from lxml import etree

from feeds.validate import validate_element
from syndication.logs import get_logger
from syndication.records import Listing, ListingImage, Office
from syndication.rules.image_categories import image_category
from syndication.rules.logo import office_logo

T = TypeVar("T")

NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry."""


def clean_text(value: str) -> tuple[str, int]:
    """``value`` without the characters XML 1.0 cannot carry, and how many were removed."""
    cleaned, removed = NOT_XML.subn("", value)
    return cleaned, removed


def has_text(value: str | None) -> bool:
    """True when ``value`` still says something once cleaned (for preconditions)."""
    return value is not None and bool(clean_text(value)[0].strip())


def kronor_only(listing: Listing, title: str) -> list[str]:
    """The unmet condition of a Swedish marketplace, whose formats carry no currency,
    for a listing priced in anything but kronor: its price would be shown as kronor."""
    if listing.currency == "SEK":
        return []
    return [f"currency: {title} takes prices in SEK only, not {listing.currency} (pris i kronor)"]


@dataclass(frozen=True, slots=True)
class BuildResult:
    """A built, validated document and the warnings recorded while building it."""

    document: bytes
    warnings: tuple[str, ...] = ()


@dataclass
class Document:
    """The state of one build: whose listing, for which marketplace (with its logo
    policy), and its warnings."""

    listing_id: str
    marketplace: str
    logo: bool = True
    warnings: list[str] = field(default_factory=list)

    def office_logo(self, office: Office) -> str | None:
        """The office logo for this marketplace's documents, or ``None`` (R6: ``logo`` is
        the registry entry's ``receives_logo``)."""
        return office_logo(office, receives_logo=self.logo)

    def text(self, value: str | None, name: str, limit: int) -> str | None:
        """``value`` fit for XML and cut at ``limit``; ``None`` if nothing is left.

        A cut starts at the first character that is not white space, so a text
        that has something to say (what the preconditions check) never becomes
        white space only, which would leave a required element out."""
        if value is None:
            return None
        cleaned, removed = clean_text(value)
        if removed:
            self.warnings.append(f"{name}: removed {removed} character(s) that XML cannot carry")
        if not cleaned.strip():
            return None
        if len(cleaned) > limit:
            self.warnings.append(f"{name}: cut from {len(cleaned)} to {limit} characters")
            cleaned = cleaned.lstrip()[:limit]
        return cleaned

    def sub(
        self,
        parent: etree._Element,
        tag: str,
        value: str | None = None,
        *,
        name: str | None = None,
        limit: int = 0,
        attrib: dict[str, str] | None = None,
    ) -> etree._Element | None:
        """Append ``<tag>`` with ``value``'s cleaned text, cut at ``limit`` when one is given.

        Returns ``None`` and appends nothing when a text value is empty after
        cleaning, so optional elements never appear empty.
        """
        text = self.text(value, name or tag, limit or len(value or ""))
        if text is None:
            return None
        element = etree.SubElement(parent, tag, attrib or {})
        element.text = text
        return element

    def optional(
        self, parent: etree._Element, tag: str, value: object | None, fmt: Callable[..., str] = str
    ) -> None:
        """Append ``<tag>`` with ``fmt(value)`` (cleaned) unless ``value`` is ``None`` or empty."""
        if value is not None:
            self.sub(parent, tag, fmt(value))

    def images(self, listing: Listing, limit: int) -> list[tuple[int, str, ListingImage]]:
        """The listing's images by order (ties keep the record's order) as (position, url,
        image), positions from 1. Images without a usable URL and those past the
        marketplace's ``limit`` are left out, with a warning."""
        result: list[tuple[int, str, ListingImage]] = []
        for image in sorted(listing.images, key=lambda img: img.order):
            url = self.text(image.url, "image url", 2000)
            if url is None:
                self.warnings.append(f"images: an image without a URL was left out ({image.order})")
            elif len(result) == limit:
                self.warnings.append(f"images: only the first {limit} images are sent")
                break
            else:
                result.append((len(result) + 1, url, image))
        return result

    def image_category(self, element: etree._Element, image: ListingImage) -> None:
        """Set the image element's ``category`` from the photographer's tag (R11), when
        this marketplace's table maps the tag; otherwise the element stays as it is."""
        category = image_category(self.marketplace, image.tag)
        if category is not None:
            element.set("category", category)

    def first(self, items: Sequence[T], limit: int, name: str) -> Sequence[T]:
        """``items`` up to the marketplace's ``limit``, with a warning when some are left out."""
        if len(items) > limit:
            self.warnings.append(f"{name}: only the first {limit} of {len(items)} are sent")
        return items[:limit]

    def finish(self, root: etree._Element, schema_name: str) -> BuildResult:
        """Validate ``root``, log the warnings, and return the serialized document."""
        validate_element(
            schema_name, root, listing_id=self.listing_id, marketplace=self.marketplace
        )
        if self.warnings:
            log = get_logger(listing_id=self.listing_id, marketplace=self.marketplace)
            for warning in self.warnings:
                log.warning("feed_text_changed", detail=warning)
        return BuildResult(serialize(root), tuple(self.warnings))


def document_hash(document: bytes) -> str:
    """The SHA-256 of a document, hex: equal documents, equal hashes (R10). What a
    transfer compares with the last accepted copy and keys its delivery by."""
    return hashlib.sha256(document).hexdigest()


def serialize(root: etree._Element) -> bytes:
    """The one serialization of every document: UTF-8, with declaration, indented."""
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def decimal(places: int) -> Callable[[float], str]:
    """A formatter writing a number with at most ``places`` decimals and no exponent."""

    def fmt(value: float) -> str:
        text = f"{value:.{places}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text

    return fmt


def timestamp(value: datetime) -> str:
    """An ``xs:dateTime`` to the second (with the offset when the time carries one)."""
    return value.replace(microsecond=0).isoformat()
