"""R4 Object types: the type code a listing gets on each marketplace.

Each marketplace has its own code table, kept as data in
``syndication/data/object_types.toml`` (one place, not code). A farm
(``lantbruk``) with any orientation that means "no active farming"
(``fritid``, ``hastgard``, ``ovrig``) gets the farm-without-farming code —
Hemnet's 330 "Gård utan bruk"; every other farm gets the farm-with-farming
code. An unknown category or orientation is an input error naming the listing
and the field: a type code is never guessed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from syndication.errors import InputError, UnknownMarketplace
from syndication.records import CATEGORIES, ORIENTATIONS, Listing

FARM = "lantbruk"


@dataclass(frozen=True, slots=True)
class ObjectType:
    """A marketplace's type code and its display name."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class _Tables:
    codes: dict[str, dict[str, Any]]
    without_farming: frozenset[str]
    orientations: frozenset[str]


@cache
def _tables() -> _Tables:
    """The code tables, read once from the bundled TOML file."""
    raw = tomllib.loads(
        resources.files("syndication").joinpath("data/object_types.toml").read_text("utf-8")
    )
    orientations = raw.pop("orientations")
    without = frozenset(orientations["without_farming"])
    return _Tables(
        codes=raw,
        without_farming=without,
        orientations=without | frozenset(orientations["farming"]),
    )


def without_farming(listing: Listing) -> bool:
    """True when a farm's orientations include one without active farming."""
    return any(o in _tables().without_farming for o in listing.orientations)


def object_type(listing: Listing, marketplace: str) -> ObjectType:
    """The type code of ``listing`` on ``marketplace``.

    Raises :class:`InputError` for a category or an orientation outside the
    vocabulary, and :class:`UnknownMarketplace` for a marketplace without a table.
    """
    tables = _tables()
    record = f"listing '{listing.id}'"
    if listing.category not in CATEGORIES:
        raise InputError(f"unknown category {listing.category!r}", record=record, field="category")
    unknown = [
        o for o in listing.orientations if o not in ORIENTATIONS or o not in tables.orientations
    ]
    if unknown:
        raise InputError(
            f"unknown orientation(s) {', '.join(map(repr, unknown))}",
            record=record,
            field="orientations",
        )
    table = tables.codes.get(marketplace)
    if table is None:
        raise UnknownMarketplace(
            f"no type code table for marketplace {marketplace!r}", marketplace=marketplace
        )
    entry = table[listing.category]
    if listing.category == FARM:
        entry = entry["without_farming" if without_farming(listing) else "farming"]
    return ObjectType(code=str(entry["code"]), name=str(entry["name"]))


def codes(marketplace: str) -> tuple[str, ...]:
    """Every type code of ``marketplace``, in table order (the XSD enumerates the same)."""
    result: list[str] = []
    for entry in _tables().codes[marketplace].values():
        if "code" in entry:
            result.append(str(entry["code"]))
        else:
            result.extend(str(sub["code"]) for sub in entry.values())
    return tuple(result)
