"""The JSON Schema of the input records against the records it feeds."""

from __future__ import annotations

import dataclasses

import pytest
from jsonschema import Draft202012Validator

from syndication import records, registry
from syndication.ingest import schema

DEFS = schema()["$defs"]

NESTED = {
    "office": {"address": ("street", "postal_code", "city"),
               "contacts": ("phone", "email", "website")},
    "listing": {"address": ("street", "postal_code", "city", "municipality", "area", "latitude",
                            "longitude", "province", "country")},
}
"""Record fields the input groups in nested objects."""


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    ("definition", "vocabulary"),
    [
        ("marketplace", registry.names()),
        ("category", records.CATEGORIES),
        ("orientation", records.ORIENTATIONS),
        ("listing_state", records.LISTING_STATES),
        ("price_type", records.PRICE_TYPES),
        ("user_image_category", records.USER_IMAGE_CATEGORIES),
    ],
)
def test_enums_are_the_vocabulary_of_records(definition: str, vocabulary: tuple[str, ...]) -> None:
    assert tuple(DEFS[definition]["enum"]) == vocabulary


@pytest.mark.parametrize(
    ("definition", "record", "derived"),
    [
        ("office", records.Office, set()),
        ("user", records.User, set()),
        ("user_image", records.UserImage, set()),
        ("listing", records.Listing, set()),
        ("listing_image", records.ListingImage, {"source"}),
        ("viewing", records.Viewing, set()),
    ],
)
def test_every_record_field_is_modelled(definition: str, record: type, derived: set[str]) -> None:
    properties = set(DEFS[definition]["properties"])
    nested = NESTED.get(definition, {})
    for group, members in nested.items():
        assert set(DEFS[definition]["properties"][group]["properties"]) == set(members)
    flattened = (properties - set(nested)) | {m for members in nested.values() for m in members}
    fields = {f.name for f in dataclasses.fields(record)} - derived
    assert flattened == fields


def test_every_string_and_array_is_bounded() -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            kinds = node.get("type")
            kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
            if "string" in kinds and "enum" not in node:
                assert "maxLength" in node, where
            if "array" in kinds:
                assert "maxItems" in node, where
            for key, child in node.items():
                walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for child in node:
                walk(child, where)

    walk(schema(), "#")
