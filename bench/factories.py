"""The one factory of offices, brokers, listings and input documents: tests and benchmarks.

A valid office, broker and listing are each defined once here, as fields of
:mod:`syndication.records`: office ``K1`` licensed for every marketplace, whose
villas default to Hemnet and Blocket (so a villa sent without a selection is
licensed but not selected on HittaHem, R2); broker ``U1`` of that office; and
listing ``O1``, a villa for sale by ``U1`` that meets every marketplace's
preconditions (R12). The same defaults come in three shapes:

* input records, the dicts ingest takes (``schemas/records.schema.json``):
  :func:`office`, :func:`user`, :func:`listing` and :func:`document`. Their
  overrides use the input shape (``address={...}``, ``images=[{...}]``), so a
  test can send anything the desktop could, valid or not; :data:`OMIT` leaves
  a key out (a listing without ``marketplaces`` takes its office's defaults,
  one with ``marketplaces=None`` selects nothing);
* plain records: :func:`office_record`, :func:`user_record`,
  :func:`listing_record` and :func:`feed_input`, with record fields as
  overrides. ``listing_record()`` equals what the store holds after ingesting
  ``listing()`` into ``office()`` with ``user()``;
* store rows: :func:`rows` turns plain records into the rows the store keeps
  (:func:`columns` gives one row's keyword arguments), for tests that seed the
  store without ingest.

An ``id`` override names the record as the positional id does. A test that
depends on a value says so at its call site (``listing(price=None)``),
so the defaults may change without a test silently checking something else.
:func:`varied_listing` adds deterministic variety from a seeded
:class:`random.Random`, for the benchmarks and the fault tests.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date, datetime
from typing import Any, Final

from syndication import registry
from syndication.records import (
    FeedInput,
    Listing,
    ListingImage,
    Office,
    User,
)

MARKETPLACES: Final = registry.names(transport="http")
OFFICE_ID: Final = "K1"
USER_ID: Final = "U1"
LISTING_ID: Final = "O1"
VILLA_DEFAULTS: Final = ("hemnet", "blocket")
"""The default office's selection for villas, the only category it has defaults for."""


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()
"""An override that leaves the key out of an input record."""


def _office_fields(office_id: str) -> dict[str, Any]:
    return {"id": office_id, "name": f"Mäklarbyrån {office_id}", "licence": MARKETPLACES,
            "category_defaults": {"villa": VILLA_DEFAULTS}}


def _user_fields(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "office_id": OFFICE_ID, "name": "Karin Lind",
            "email": "karin@example.se"}


def _listing_fields(listing_id: str) -> dict[str, Any]:
    return {
        "id": listing_id, "office_id": OFFICE_ID, "broker_id": USER_ID, "category": "villa",
        "state": "for_sale", "price": 3_950_000, "living_area": 142, "rooms": 5,
        "street": "Storgatan 1", "postal_code": "123 45", "city": "Uppsala",
        "municipality": "Uppsala", "headline": "Villa vid ån",
        "description": "Ljus villa med trädgård.",
        "images": (ListingImage(url=f"https://img.example.se/{listing_id}/1.jpg", order=0),),
    }


def _defaults(record_type: type) -> dict[str, Any]:
    """The dataclass defaults of ``record_type``: what an input record may leave out."""
    out: dict[str, Any] = {}
    for item in dataclasses.fields(record_type):
        if item.default is not dataclasses.MISSING:
            out[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            out[item.name] = item.default_factory()
    return out


def _given(fields: dict[str, Any], record_type: type) -> dict[str, Any]:
    """``fields`` without those that equal the record's own default."""
    defaults = _defaults(record_type)
    return {k: v for k, v in fields.items() if k not in defaults or v != defaults[k]}


def _nested(fields: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    part = {name: fields.pop(name) for name in names if name in fields}
    return part or None


def _apply(record: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not OMIT}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def office_input(record: Office) -> dict[str, Any]:
    """``record`` as the desktop sends an office: address and contacts nested."""
    fields = _given(dataclasses.asdict(record), Office)
    for name, part in (("address", ("street", "postal_code", "city")),
                       ("contacts", ("phone", "email", "website"))):
        nested = _nested(fields, part)
        if nested:
            fields[name] = nested
    return _plain(fields)


def user_input(record: User) -> dict[str, Any]:
    """``record`` as the desktop sends a user card."""
    fields = _given({f.name: getattr(record, f.name) for f in dataclasses.fields(User)}, User)
    if "images" in fields:
        fields["images"] = [dataclasses.asdict(image) for image in record.images]
    return _plain(fields)


def listing_input(record: Listing) -> dict[str, Any]:
    """``record`` as the desktop sends a listing: the address nested, images and viewings as
    objects, dates as ISO text; ``marketplaces`` only when the record selects any."""
    fields = _given({f.name: getattr(record, f.name) for f in dataclasses.fields(Listing)},
                    Listing)
    address = _nested(fields, ("street", "postal_code", "city", "municipality", "area",
                               "latitude", "longitude"))
    if address:
        fields["address"] = address
    if "images" in fields:
        fields["images"] = [
            {k: v for k, v in dataclasses.asdict(image).items()
             if k in ("url", "order") or (k in ("caption", "tag") and v is not None)}
            for image in record.images
        ]
    if "viewings" in fields:
        fields["viewings"] = [
            {k: v.isoformat() if isinstance(v, datetime) else v
             for k, v in dataclasses.asdict(viewing).items() if v is not None}
            for viewing in record.viewings
        ]
    if isinstance(fields.get("contract_date"), date):
        fields["contract_date"] = fields["contract_date"].isoformat()
    return _plain(fields)


def office(office_id: str = OFFICE_ID, **overrides: Any) -> dict[str, Any]:
    """The default office as an input record; ``overrides`` in the input shape."""
    office_id = overrides.pop("id", office_id)
    return _apply(office_input(Office(**_office_fields(office_id))), overrides)


def user(user_id: str = USER_ID, **overrides: Any) -> dict[str, Any]:
    """The default broker's user card as an input record; ``overrides`` in the input shape."""
    user_id = overrides.pop("id", user_id)
    return _apply(user_input(User(**_user_fields(user_id))), overrides)


def listing(listing_id: str = LISTING_ID, **overrides: Any) -> dict[str, Any]:
    """The default listing as an input record, without a selection of its own (the office's
    defaults decide, R2); ``overrides`` in the input shape."""
    listing_id = overrides.pop("id", listing_id)
    return _apply(listing_input(Listing(**_listing_fields(listing_id))), overrides)


def document(*, offices: list[Any] | None = None, users: list[Any] | None = None,
             listings: list[Any] | None = None) -> dict[str, Any]:
    """An input document; each array defaults to the one default record."""
    return {
        "offices": [office()] if offices is None else list(offices),
        "users": [user()] if users is None else list(users),
        "listings": [listing()] if listings is None else list(listings),
    }


_TUPLES = ("licence", "orientations", "marketplaces", "images", "viewings", "companies")


def _record(record_type: type, fields: dict[str, Any], overrides: dict[str, Any]) -> Any:
    merged = {**fields, **overrides}
    for name in _TUPLES:
        if isinstance(merged.get(name), list):
            merged[name] = tuple(merged[name])
    return record_type(**merged)


def office_record(office_id: str = OFFICE_ID, **overrides: Any) -> Office:
    """The default office as a plain record; ``overrides`` are :class:`Office` fields."""
    office_id = overrides.pop("id", office_id)
    return _record(Office, _office_fields(office_id), overrides)  # type: ignore[no-any-return]


def user_record(user_id: str = USER_ID, **overrides: Any) -> User:
    """The default broker as a plain record; ``overrides`` are :class:`User` fields."""
    user_id = overrides.pop("id", user_id)
    return _record(User, _user_fields(user_id), overrides)  # type: ignore[no-any-return]


def listing_record(listing_id: str = LISTING_ID, **overrides: Any) -> Listing:
    """The default listing as a plain record; ``overrides`` are :class:`Listing` fields.

    Without a ``marketplaces`` override the selection is what the default office's
    defaults give its category at creation: Hemnet and Blocket for a villa, none otherwise.
    """
    listing_id = overrides.pop("id", listing_id)
    fields = _listing_fields(listing_id)
    category = overrides.get("category", fields["category"])
    fields["marketplaces"] = VILLA_DEFAULTS if category == "villa" else ()
    return _record(Listing, fields, overrides)  # type: ignore[no-any-return]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


_DEFAULT: Final = _Default()


def feed_input(listing: Listing | None = None, office: Office | None = None,
               broker: User | None | _Default = _DEFAULT) -> FeedInput:
    """What a feed builder takes; each part defaults to its default record, and
    ``broker=None`` is a listing without a broker."""
    chosen = user_record() if isinstance(broker, _Default) else broker
    return FeedInput(listing or listing_record(), office or office_record(), chosen)


def columns(record: Office | User | Listing) -> dict[str, Any]:
    """The keyword arguments of ``record``'s store row (tuples as lists, a user's images as
    objects). A listing's images and viewings are left out: images are rows of their own."""
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if isinstance(record, Listing):
        del fields["images"]
        fields["viewings"] = [dataclasses.asdict(v) for v in record.viewings]
    if isinstance(record, User):
        fields["images"] = [dataclasses.asdict(image) for image in record.images]
    return _plain(fields)  # type: ignore[no-any-return]


def rows(*records: Office | User | Listing) -> list[Any]:
    """The store rows of ``records``, in order: an office, user or listing row each, and
    after a listing its images, as ingest would store them."""
    from syndication.store.models import ListingImageRow, ListingRow, OfficeRow, UserRow

    out: list[Any] = []
    for record in records:
        if isinstance(record, Office):
            out.append(OfficeRow(**columns(record)))
        elif isinstance(record, User):
            out.append(UserRow(**columns(record)))
        else:
            out.append(ListingRow(**columns(record)))
            out.extend(
                ListingImageRow(listing_id=record.id, url=i.url, position=i.order,
                                caption=i.caption, tag=i.tag, source=i.source)
                for i in record.images
            )
    return out


VARIED_CATEGORIES: Final = ("villa", "radhus", "bostadsratt", "fritidshus", "lantbruk")
STREETS: Final = ("Storgatan", "Kungsvägen", "Björkstigen", "Åvägen", "Sjövägen", "Ekbacken")
CITIES: Final = (("Uppsala", "75320"), ("Göteborg", "41101"), ("Umeå", "90326"),
                 ("Malmö", "21122"))


def varied_listing(listing_id: str, rng: random.Random, **overrides: Any) -> dict[str, Any]:
    """A listing for sale that meets every marketplace's preconditions, its category,
    address, figures and images drawn from ``rng``; selected on every marketplace.

    The draws are made in a fixed order, so a seed gives the same listings run after run.
    """
    category = rng.choice(VARIED_CATEGORIES)
    city, postal_code = rng.choice(CITIES)
    drawn: dict[str, Any] = {
        "category": category,
        "address": {
            "street": f"{rng.choice(STREETS)} {rng.randint(1, 120)}",
            "postal_code": postal_code, "city": city, "municipality": city,
            "latitude": round(55.5 + rng.random() * 8, 6),
            "longitude": round(12.5 + rng.random() * 8, 6),
        },
        "price": rng.randrange(500_000, 12_000_000, 5_000),
        "price_type": "asking",
        "living_area": float(rng.randint(25, 260)),
        "rooms": float(rng.randint(1, 9)),
        "build_year": rng.randint(1890, 2024),
        "headline": f"Välkommen till {category} i {city}",
        "short_description": "Ljust och trivsamt med balkong i söderläge.",
        "description": "Ett fint hem nära natur, skola och kommunikationer. " * 4,
        "images": [
            {"url": f"https://media.example.se/{listing_id}/{n}.jpg", "order": n,
             "caption": f"Bild {n + 1}"}
            for n in range(rng.randint(1, 6))
        ],
        "marketplaces": list(MARKETPLACES),
    }
    if category == "bostadsratt":
        drawn["monthly_fee"] = rng.randint(1_500, 7_000)
    if category in ("villa", "fritidshus", "lantbruk"):
        drawn["plot_area"] = float(rng.randint(300, 50_000))
    if category == "lantbruk":
        drawn["orientations"] = rng.choice((["jordbruk"], ["skogsbruk", "fritid"], ["hastgard"]))
    return listing(listing_id, **{**drawn, **overrides})
