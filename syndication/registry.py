"""The marketplace registry: the one source of every marketplace fact.

A marketplace is one feed module in ``feeds/`` (its format: the listing
element, the documents, the full-feed containers, the publication conditions)
and one :class:`Marketplace` entry in :data:`ENTRIES`, which adds what is not
a matter of format: the display name, the logo policy (R6), the default
error contacts (R8) and the transport kinds it can be delivered by. Every
other list of marketplaces — the input schema's enum, the type-code table, the
status views, the sandbox, the benchmarks — is derived from here, and
``tests/test_registry.py`` fails when one of them disagrees.

The feed modules never import this module; it imports them. An unknown name
raises :class:`~syndication.errors.UnknownMarketplace` naming the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from lxml import etree

from feeds import blocket, hemnet, hittahem, kyero
from feeds.common import BuildResult, Document
from syndication.errors import PermanentError, UnknownMarketplace
from syndication.records import Contacts, FeedInput

ADVICE = "Försök med överföringen igen först (try the transfer again first)."
"""The advice every failure shows first (R8)."""

Containers = list[tuple[str, dict[str, str]]]


class FeedFormat(Protocol):
    """What a feed module in ``feeds/`` provides; every function is pure."""

    SCHEMA: str

    def listing_element(self, doc: Document, feed_input: FeedInput) -> etree._Element:
        """The listing's element as it stands in the full feed."""

    def document(self, doc: Document, feed_input: FeedInput) -> etree._Element:
        """The root of the create/update document of one listing."""

    def feed_root(self, office_id: str) -> Containers:
        """The elements enclosing the listings of the full feed, outermost first."""

    def feed_header(self, office_id: str) -> list[etree._Element]:
        """The elements the feed opens with inside its containers, before the listings."""

    def preconditions(self, feed_input: FeedInput) -> list[str]:
        """Every publication condition (R12) the listing does not meet, as messages."""


DeleteDocument = Callable[[Document, FeedInput, str], etree._Element]


@dataclass(frozen=True)
class Marketplace:
    """Everything the orchestration knows of one marketplace.

    * ``format`` — its feed module; ``delete_document`` its delete document, or
      ``None`` for a pull marketplace (R17), where a listing leaves by being
      left out of the next full feed.
    * ``receives_logo`` — whether the office logo goes in its documents (R6).
    * ``contacts`` — its default error contacts; a marketplaces file may
      override them.
    * ``transports`` — the transport kinds it can be delivered by; the first is
      used when the marketplaces file names none.
    """

    name: str
    title: str
    format: FeedFormat
    delete_document: DeleteDocument | None
    contacts: Contacts
    transports: tuple[str, ...]
    receives_logo: bool = True

    @property
    def schema(self) -> str:
        """The XSD file name in ``schemas/`` that every document must satisfy."""
        return self.format.SCHEMA

    @property
    def pull(self) -> bool:
        """True for a marketplace that fetches the office's whole feed (R17)."""
        return self.delete_document is None

    def new_document(self, listing_id: str) -> Document:
        """The state of one build for this marketplace, with its logo policy."""
        return Document(listing_id=listing_id, marketplace=self.name, logo=self.receives_logo)

    def build_result(self, feed_input: FeedInput) -> BuildResult:
        """The validated create/update document and the warnings recorded building it."""
        doc = self.new_document(feed_input.listing.id)
        return doc.finish(self.format.document(doc, feed_input), self.schema)

    def build(self, feed_input: FeedInput) -> bytes:
        """The validated create/update document of ``feed_input``'s listing."""
        return self.build_result(feed_input).document

    def build_delete(self, feed_input: FeedInput, reason: str) -> bytes:
        """The validated delete document; ``reason`` is sold, withdrawn, deselected or
        deleted. A pull marketplace has none: :class:`PermanentError`."""
        if self.delete_document is None:
            raise PermanentError(
                f"{self.title} fetches the whole feed: there is no per-listing delete document",
                listing_id=feed_input.listing.id,
                marketplace=self.name,
            )
        doc = self.new_document(feed_input.listing.id)
        return doc.finish(self.delete_document(doc, feed_input, reason), self.schema).document

    def preconditions(self, feed_input: FeedInput) -> list[str]:
        """Every unmet publication condition (R12); empty when it may be published."""
        return self.format.preconditions(feed_input)

    def listing_element(self, doc: Document, feed_input: FeedInput) -> etree._Element:
        """The listing's element of the full feed (not yet validated)."""
        return self.format.listing_element(doc, feed_input)

    def feed_root(self, office_id: str) -> Containers:
        """The elements enclosing the listings of the full feed, outermost first."""
        return self.format.feed_root(office_id)

    def feed_header(self, office_id: str) -> list[etree._Element]:
        """The elements the feed opens with before its listings (Kyero's ``<kyero>``)."""
        return self.format.feed_header(office_id)


ENTRIES: tuple[Marketplace, ...] = (
    Marketplace(
        name="hemnet",
        title="Hemnet",
        format=hemnet,
        delete_document=hemnet.delete_document,
        contacts=Contacts(
            name="Hemnet mäklarsupport",
            email="maklarsupport@hemnet.se",
            phone="08-55 80 63 00",
            web="https://www.hemnet.se/maklare/support",
            advice=f"{ADVICE} Hemnet support behöver HemnetID för att felsöka.",
        ),
        transports=("file", "http"),
    ),
    Marketplace(
        name="blocket",
        title="Blocket Bostad",
        format=blocket,
        delete_document=blocket.delete_document,
        contacts=Contacts(
            name="Blocket Bostad kundtjänst",
            email="bostad@blocket.se",
            phone="08-545 216 00",
            web="https://www.blocket.se/bostad/kundservice",
            advice=ADVICE,
        ),
        transports=("file", "http"),
        receives_logo=False,
    ),
    Marketplace(
        name="hittahem",
        title="HittaHem",
        format=hittahem,
        delete_document=hittahem.delete_document,
        contacts=Contacts(
            name="HittaHem.se support",
            email="support@hittahem.se",
            phone="010-330 00 00",
            web="https://www.hittahem.se/kontakt",
            advice=ADVICE,
        ),
        transports=("file", "http"),
    ),
    Marketplace(
        name="kyero",
        title="Kyero",
        format=kyero,
        delete_document=None,
        contacts=Contacts(
            name="Kyero agent support",
            email="agents@kyero.com",
            phone="+44 117 332 7300",
            web="https://www.kyero.com/en/agents",
            advice=f"{ADVICE} Kyero hämtar flödet själv; kontrollera att flödets adress är "
            "den Kyero har.",
        ),
        transports=("feed",),
        receives_logo=False,
    ),
)
"""Every marketplace, in the order status views list them.

The contacts are unverified placeholders in each marketplace's own style:
check them against the agency's agreement before going live (a marketplaces
file can override every one of them)."""

_BY_NAME: dict[str, Marketplace] = {entry.name: entry for entry in ENTRIES}


def names(*, transport: str | None = None) -> tuple[str, ...]:
    """Every registered marketplace name in display order; with ``transport``, only those
    that can be delivered by that kind (the sandbox serves the ``http`` ones)."""
    return tuple(e.name for e in ENTRIES if transport is None or transport in e.transports)


def push_names() -> tuple[str, ...]:
    """The marketplaces that take one document per listing, deletes included."""
    return tuple(entry.name for entry in ENTRIES if not entry.pull)


def entries() -> tuple[Marketplace, ...]:
    """Every registry entry, in display order."""
    return ENTRIES


def get(name: str) -> Marketplace:
    """The registry entry for ``name``; :class:`UnknownMarketplace` if there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownMarketplace(
            f"unknown marketplace {name!r}; known: {', '.join(_BY_NAME)}", marketplace=name
        ) from None


def title(name: str) -> str:
    """The marketplace's display name, for messages to the agency (the bare name for one
    the registry does not know, so a stale name in old history still prints)."""
    entry = _BY_NAME.get(name)
    return entry.title if entry is not None else name


def ordered(chosen: Iterable[str]) -> tuple[str, ...]:
    """``chosen`` without duplicates, in display order.

    An unknown name is an error, never dropped: a selection or a licence that
    names a marketplace the registry lacks would otherwise be stored without
    it, and nothing would ever be sent or say why.
    """
    wanted = set(chosen)
    unknown = sorted(wanted - _BY_NAME.keys())
    if unknown:
        get(unknown[0])
    return tuple(name for name in _BY_NAME if name in wanted)
