"""The marketplace registry: one entry per marketplace.

A marketplace is a feed builder, a delete builder, a set of preconditions
(R12) and the XSD its documents must satisfy, all found here by name. The
orchestration only ever asks the registry; adding a fourth marketplace is one
module in ``feeds/`` and one line in :data:`FEED_MODULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from syndication.errors import UnknownMarketplace
from syndication.records import FeedInput

FEED_MODULES: dict[str, str] = {
    "hemnet": "feeds.hemnet",
    "blocket": "feeds.blocket",
    "hittahem": "feeds.hittahem",
    "kyero": "feeds.kyero",
}
"""Marketplace name → the feed module that defines its ``MARKETPLACE`` entry."""


@dataclass(frozen=True)
class Marketplace:
    """What the orchestration needs to know of one marketplace.

    * ``build(feed_input)`` — the create/update document, validated, as bytes.
    * ``build_delete(feed_input, reason)`` — the delete document; ``reason`` is
      ``sold``, ``withdrawn``, ``deselected`` or ``deleted`` (R13).
    * ``preconditions(feed_input)`` — every unmet publication condition, as
      messages; empty when the listing may be published (R12).
    * ``schema`` — the XSD file name in ``schemas/``.
    * ``receives_logo`` — whether the office logo goes in its documents (R6).
    * ``pull`` — the marketplace fetches the office's whole feed (R17) and has
      no per-listing delete (``build_delete`` raises).
    """

    name: str
    title: str
    build: Callable[[FeedInput], bytes]
    build_delete: Callable[[FeedInput, str], bytes]
    preconditions: Callable[[FeedInput], list[str]]
    schema: str
    receives_logo: bool = True
    pull: bool = False


def names() -> tuple[str, ...]:
    """Every registered marketplace name, in display order."""
    return tuple(FEED_MODULES)


def push_names() -> tuple[str, ...]:
    """The marketplaces that take one document per listing, deletes included."""
    return tuple(name for name in names() if not get(name).pull)


@cache
def get(name: str) -> Marketplace:
    """The registry entry for ``name``; :class:`UnknownMarketplace` if there is none."""
    module_name = FEED_MODULES.get(name)
    if module_name is None:
        raise UnknownMarketplace(
            f"unknown marketplace {name!r}; known: {', '.join(FEED_MODULES)}", marketplace=name
        )
    marketplace = import_module(module_name).MARKETPLACE
    if not isinstance(marketplace, Marketplace):
        raise TypeError(f"{module_name}.MARKETPLACE is not a Marketplace")
    return marketplace
