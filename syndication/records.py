"""Plain domain records: what the rules and the feed builders work on.

These are frozen dataclasses with no behaviour beyond a few derived
properties. The store (``syndication.store``) turns database rows into these
records and back; the rules and builders never see a database row.

The vocabulary (categories, orientations, states) is defined here once and
reused by the JSON Schema of the input records, the store and the rules. The
marketplaces are the registry's (``syndication.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

CATEGORIES: tuple[str, ...] = (
    "villa",
    "radhus",
    "parhus",
    "kedjehus",
    "bostadsratt",
    "fritidshus",
    "tomt",
    "lantbruk",
)
"""Listing categories ("objektkategorier") the desktop can send."""

ORIENTATIONS: tuple[str, ...] = (
    "jordbruk",
    "skogsbruk",
    "djurhallning",
    "fritid",
    "hastgard",
    "ovrig",
)
"""Farm orientations ("inriktningar"); only listings of category ``lantbruk`` carry them."""

LISTING_STATES: tuple[str, ...] = ("coming", "for_sale", "sold", "withdrawn", "deleted")
"""``coming`` is "kommande", ``for_sale`` "till salu"; ``withdrawn`` and ``deleted``
both remove the listing from every marketplace (R3)."""

PRICE_TYPES: tuple[str, ...] = ("asking", "accepted", "fixed", "tender", "none")
"""Utgångspris, accepterat pris, fast pris, anbud, pris saknas."""

USER_IMAGE_CATEGORIES: tuple[str, ...] = ("portratt", "signatur", "logotyp", "ovrig")

TRANSFER_STATES: tuple[str, ...] = (
    "queued",
    "sent",
    "published",
    "failed",
    "deleted",
    "not_selected",
    "not_licensed",
)
"""States of a listing on one marketplace (R8)."""

FINAL_STATES: frozenset[str] = frozenset(
    {"published", "failed", "deleted", "not_selected", "not_licensed", "sent"}
)
"""States after which a transfer job has nothing more to do. ``sent`` is final for
the transfer job; the confirmation job moves it on to ``published`` later."""


@dataclass(frozen=True, slots=True)
class Office:
    """An estate agency office ("mäklarkontor") and its settings."""

    id: str
    name: str
    licence: tuple[str, ...] = ()
    category_defaults: dict[str, tuple[str, ...]] = field(default_factory=dict)
    final_price_enabled: bool = False
    hemnet_final_price_agreement: bool = False
    company_id: str | None = None
    logo_url: str | None = None
    phone: str | None = None
    email: str | None = None
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class UserImage:
    """An image on a user card (portrait, signature, logo, …)."""

    url: str
    category: str
    to_internet: bool = False
    order: int = 0


@dataclass(frozen=True, slots=True)
class User:
    """A broker's user card ("användarkort")."""

    id: str
    office_id: str
    name: str
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    show_on_internet: bool = False
    images: tuple[UserImage, ...] = ()
    companies: tuple[str, ...] = ()
    main_company: str | None = None
    statistics_all_companies: bool = False


@dataclass(frozen=True, slots=True)
class ListingImage:
    """An image of a listing, from the desktop or from the photo portal."""

    url: str
    order: int = 0
    caption: str | None = None
    tag: str | None = None
    source: str = "desktop"


@dataclass(frozen=True, slots=True)
class Viewing:
    """A viewing time ("visning")."""

    starts_at: datetime
    ends_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing ("objekt") as the desktop last sent it.

    ``marketplaces`` is the listing's own selection (R2), already resolved
    against the office defaults when the listing was created. ``country``
    (ISO 3166-1 alpha-2) and ``currency`` (ISO 4217, of ``price`` and
    ``monthly_fee``) default to a Swedish listing priced in kronor; a home
    abroad also carries its ``province``, bedrooms, bathrooms, an English
    description and ``modified_at``, the time the desktop last saved it.
    """

    id: str
    office_id: str
    category: str
    state: str
    system_id: str | None = None
    company_id: str | None = None
    broker_id: str | None = None
    orientations: tuple[str, ...] = ()
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    municipality: str | None = None
    area: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    price: int | None = None
    price_type: str = "asking"
    living_area: float | None = None
    plot_area: float | None = None
    rooms: float | None = None
    monthly_fee: int | None = None
    build_year: int | None = None
    headline: str | None = None
    short_description: str | None = None
    description: str | None = None
    images: tuple[ListingImage, ...] = ()
    viewings: tuple[Viewing, ...] = ()
    marketplaces: tuple[str, ...] = ()
    final_price: int | None = None
    contract_date: date | None = None
    send_final_price: bool = False
    country: str = "SE"
    province: str | None = None
    currency: str = "SEK"
    bedrooms: int | None = None
    bathrooms: int | None = None
    description_en: str | None = None
    modified_at: datetime | None = None

    @property
    def removed(self) -> bool:
        """True when the desktop has withdrawn or deleted the listing (R3)."""
        return self.state in ("withdrawn", "deleted")


@dataclass(frozen=True, slots=True)
class FeedInput:
    """Everything a feed builder needs for one listing: the listing, its office
    and its broker (``None`` when the listing has no broker)."""

    listing: Listing
    office: Office
    broker: User | None = None


@dataclass(frozen=True, slots=True)
class Contacts:
    """A marketplace's error contacts, shown with a failure (R8)."""

    name: str
    email: str | None = None
    phone: str | None = None
    web: str | None = None
    advice: str = "Försök med överföringen igen först (try the transfer again first)."

    def as_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "web": self.web,
            "advice": self.advice,
        }


@dataclass(frozen=True, slots=True)
class TransferStatus:
    """The stored outcome for one listing on one marketplace (R8)."""

    listing_id: str
    marketplace: str
    state: str
    marketplace_id: str | None = None
    public_url: str | None = None
    action: str | None = None
    at: datetime | None = None
    attempts: int = 0
    error: str | None = None
    document_hash: str | None = None
