"""R11 image tags as the marketplaces' image categories: the table and the documents.

The decision table (``syndication/data/image_categories.toml``)::

    tag (any case)                              hemnet      hittahem     blocket
    planritning, planlösning, plan, floorplan   floorPlan   floor-plan   (none)
    karta, kart, map                            map         map          (none)
    fasad, fasade, exteriör, exterior           exterior    exterior     (none)
    anything else, or no tag                    (none)      (none)       (none)

Blocket's and Kyero's formats have no image categories; their modules say so.
"""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest
from feed_samples import KYERO_SAMPLES, SAMPLES
from lxml import etree

from feeds.validate import validate
from syndication import registry
from syndication.records import ListingImage
from syndication.rules.image_categories import has_categories, image_category

TABLE = [
    ("planritning", "floorPlan", "floor-plan"),
    ("Planlösning", "floorPlan", "floor-plan"),
    (" plan ", "floorPlan", "floor-plan"),
    ("Floor  Plan", "floorPlan", "floor-plan"),
    ("plantegning", "floorPlan", "floor-plan"),
    ("karta", "map", "map"),
    ("kart", "map", "map"),
    ("MAP", "map", "map"),
    ("fasad", "exterior", "exterior"),
    ("fasade", "exterior", "exterior"),
    ("Exteriör", "exterior", "exterior"),
    ("exterior", "exterior", "exterior"),
    ("kok", None, None),
    ("vardagsrum", None, None),
    ("", None, None),
    (None, None, None),
]


@pytest.mark.parametrize(("tag", "hemnet", "hittahem"), TABLE)
def test_decision_table(tag: str | None, hemnet: str | None, hittahem: str | None) -> None:
    assert image_category("hemnet", tag) == hemnet
    assert image_category("hittahem", tag) == hittahem
    assert image_category("blocket", tag) is None


IMAGE_XPATH = {"hemnet": "/listing/images/image", "hittahem": "/hittahem/property/media/image",
               "blocket": "/annons/bild", "kyero": "/root/property/images/image"}


def images_of(marketplace: str, tags: list[str | None]) -> list[etree._Element]:
    entry = registry.get(marketplace)
    feed_input = KYERO_SAMPLES["villa-marbella"] if entry.pull else SAMPLES["villa-portrait"]
    images = tuple(
        ListingImage(url=f"https://media.example.se/t/{n}.jpg", order=n, tag=tag)
        for n, tag in enumerate(tags)
    )
    feed_input = replace(feed_input, listing=replace(feed_input.listing, images=images))
    document = entry.build(feed_input)
    validate(entry.schema, document)
    found = etree.fromstring(document).xpath(IMAGE_XPATH[marketplace])
    assert len(found) == len(tags), marketplace
    return list(found)


@pytest.mark.parametrize("marketplace", registry.names())
def test_every_category_reaches_the_document_and_validates(marketplace: str) -> None:
    tags = [row[0] for row in TABLE]
    elements = images_of(marketplace, tags)
    expected = [image_category(marketplace, tag) for tag in tags]
    assert [e.get("category") for e in elements] == expected
    kinds = {image_category(marketplace, tag) for tag in ("plan", "map", "fasad")}
    if has_categories(marketplace):
        assert None not in kinds and len(kinds) == 3
        assert set(filter(None, expected)) == kinds
    else:
        assert kinds == {None}


@pytest.mark.parametrize("marketplace", registry.names())
def test_a_format_without_categories_says_so(marketplace: str) -> None:
    schema = (importlib.resources.files("schemas") / registry.get(marketplace).schema).read_text(
        "utf-8"
    )
    module_doc = registry.get(marketplace).format.__doc__ or ""
    if has_categories(marketplace):
        assert 'name="category" type="ImageCategory"' in schema
        assert "category" in module_doc
    else:
        assert "ImageCategory" not in schema
        assert "no image categories" in " ".join(module_doc.split())
