"""R11 Image tags: the category an image gets on a marketplace from its photographer's tag.

The photo portal lets the photographer tag each image (a floor plan, a map,
the exterior); R11 attaches the tag to the listing's image. Where a
marketplace's format has image categories the tag goes there as that
marketplace's category, through the table in
``syndication/data/image_categories.toml`` (data, not code, like the object
type codes of R4). A tag the table does not know, or no tag, gives no category:
the image still goes, as an ordinary photo, since a tag is the photographer's
free text and never a reason to hold a listing back. A marketplace without a
table has no image categories in its format.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from syndication.errors import ConfigurationError


@cache
def _tables() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(tag → kind, marketplace → kind → category), read once from the bundled TOML file.

    A kind a marketplace table names but no tag means is an error naming it, so
    a typo in the table never silently drops a category. (That each table names
    a registered marketplace is the registry's invariant test: the feed
    builders read this table, and the registry imports them.)
    """
    raw = tomllib.loads(
        resources.files("syndication").joinpath("data/image_categories.toml").read_text("utf-8")
    )
    kinds: dict[str, str] = {}
    for kind, tags in raw.pop("tags").items():
        for tag in tags:
            kinds[_key(tag)] = kind
    for marketplace, table in raw.items():
        unknown = set(table) - set(kinds.values())
        if unknown:
            raise ConfigurationError(
                f"image_categories.toml: [{marketplace}] names kinds without tags: "
                f"{', '.join(sorted(unknown))}"
            )
    return kinds, raw


def _key(tag: str) -> str:
    return " ".join(tag.split()).casefold()


def has_categories(marketplace: str) -> bool:
    """True when ``marketplace``'s format has image categories (it has a table)."""
    return marketplace in _tables()[1]


def image_category(marketplace: str, tag: str | None) -> str | None:
    """The category ``marketplace`` gets for an image tagged ``tag``, or ``None``."""
    if not tag:
        return None
    kinds, categories = _tables()
    kind = kinds.get(_key(tag))
    if kind is None:
        return None
    return categories.get(marketplace, {}).get(kind)
