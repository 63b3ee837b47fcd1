"""Validation of the input document, record by record (``schemas/records.schema.json``).

:func:`parse_document` reads the raw bytes defensively: a size limit, invalid
UTF-8, NaN and Infinity, nesting too deep for the JSON reader, and a wrong outer
shape each become one :class:`RecordError` about the ``document``.
:func:`record_errors` checks one record with the JSON Schema (draft 2020-12,
format checks on) and then with what a schema cannot say, and explains every
problem as ``listing 'OBJ1': field 'price': …`` without echoing huge values or
letting an escape sequence from the input reach a terminal.

The references between records (a listing's office and broker) need the store
and are checked by :mod:`syndication.ingest`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from syndication import registry
from syndication.errors import InputError

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""Largest document accepted (64 MiB, about 50 000 listings with long texts)."""

MAX_RECORD_DEPTH = 8
"""Deepest nesting of objects and arrays inside one record; the schema needs 3."""

MAX_LISTED_CHOICES = 20
"""An enum error lists the allowed values up to this many; longer code lists (countries,
currencies) are named by their schema title instead."""

KINDS = (("offices", "office"), ("users", "user"), ("listings", "listing"))


class RecordError(InputError):
    """One problem with one record: ``listing 'OBJ1': field 'price': must be a number``."""

    def __str__(self) -> str:
        parts = [self.record or "document"]
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join([*parts, self.message])


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the input document: ``schemas/records.schema.json`` with the
    enum of marketplace names taken from the registry, the one list of them."""
    from schemas import path

    with path("records.schema.json").open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    loaded["$defs"]["marketplace"]["enum"] = list(registry.names())
    return loaded


def _ecma_pattern(validator: Any, pattern: str, instance: Any, _: Any) -> Iterator[ValidationError]:
    """``pattern`` with ECMA-262 semantics for ``$`` (end of input): Python's ``$`` also
    matches before a final newline, which would let ``"OBJ1\\n"`` pass as an id."""
    if not validator.is_type(instance, "string"):
        return
    ends = pattern.endswith("$") and not pattern.endswith("\\$")
    if re.search(pattern[:-1] + r"\Z" if ends else pattern, instance) is None:
        yield ValidationError(f"does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@cache
def _validator(kind: str) -> Any:
    """A validator for one record of ``kind`` (``office``, ``user``, ``listing``), or of the
    document's outer shape (``document``: the arrays, not their records)."""
    full = schema()
    if kind == "document":
        shape = dict(full)
        shape["properties"] = {
            name: {k: v for k, v in spec.items() if k != "items"}
            for name, spec in full["properties"].items()
        }
        return _Validator(shape, format_checker=Draft202012Validator.FORMAT_CHECKER)
    one = {"$schema": full["$schema"], "$defs": full["$defs"], "$ref": f"#/$defs/{kind}"}
    return _Validator(one, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int | float:
    """An integer literal; one too long for any field becomes ±infinity, so the record
    holding it is rejected by field instead of the document failing to parse."""
    if len(digits) <= 30:
        return int(digits)
    return float("-inf") if digits.startswith("-") else float("inf")


def parse_document(raw: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, list[Any]]:
    """The document as ``{kind: [records]}``; :class:`RecordError` about the document when it
    cannot be used at all (too large, not UTF-8, not JSON, nested too deeply, wrong shape)."""

    def unusable(message: str) -> RecordError:
        return RecordError(message, record="document")

    if len(raw) > max_bytes:
        raise unusable(f"is {len(raw)} bytes; at most {max_bytes} are accepted")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise unusable(f"is not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise unusable(f"is not valid JSON: {exc.msg} at {where}") from None
    except ValueError as exc:
        raise unusable(f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise unusable("is nested too deeply to read") from None
    errors = sorted(_validator("document").iter_errors(data), key=lambda e: list(e.path))
    if errors:
        field_name, message = _explain(errors[0])
        raise RecordError(message, record="document", field=field_name or None)
    return {name: data.get(name, []) for name, _ in KINDS}


def _too_deep(record: dict[str, Any], limit: int) -> str | None:
    """The field of ``record`` that nests objects and arrays deeper than ``limit``, or
    ``None`` (checked without recursion, so any depth is safe)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, key) for key, value in record.items()]
    while stack:
        item, depth, top = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return top
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1, top) for child in children)
    return None


def _show(value: Any, limit: int = 60) -> str:
    """A short, printable rendering of a value for a message (control characters escaped)."""
    text = repr(value[: limit + 1]) if isinstance(value, str) else json.dumps(value)[: limit + 1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
               int: "a number", float: "a number", type(None): "null"}
_SCHEMA_TYPES = {"object": "an object", "array": "an array", "string": "a string",
                 "boolean": "true or false", "integer": "a whole number", "number": "a number",
                 "null": "null"}


def _printable(text: str, limit: int = 80) -> str:
    """``text`` with every unprintable character escaped (an escape sequence from the input
    must never reach a terminal), cut to ``limit`` characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown if len(text) <= limit else shown + "…"


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        name = _printable(str(part))
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogates(record: Any) -> Iterator[str]:
    """The paths of the strings (and keys) in ``record`` holding lone UTF-16 surrogates, which
    JSON's ``\\udXXX`` escapes can produce but no text can carry."""
    stack: list[tuple[Any, list[Any]]] = [(record, [])]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and _SURROGATE.search(item):
            yield _path(where)
        elif isinstance(item, dict):
            for key, value in item.items():
                if _SURROGATE.search(key):
                    yield _path([*where, key])
                else:
                    stack.append((value, [*where, key]))
        elif isinstance(item, list):
            stack.extend((value, [*where, index]) for index, value in enumerate(item))


def _explain(error: ValidationError) -> tuple[str, str]:
    """``(field, message)`` for one schema error, without echoing huge values."""
    where, value = list(error.absolute_path), error.instance
    rule, limit = error.validator, error.validator_value
    if rule == "required":
        missing = next((name for name in limit if name not in value), "?")
        return _path([*where, missing]), "is required"
    if rule == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extra = sorted(name for name in value if name not in known)
        return _path([*where, extra[0] if extra else "?"]), "is not a known field"
    if isinstance(value, float) and math.isinf(value):
        return _path(where), "is a number out of range (over 30 digits or beyond 1e308)"
    if rule == "type":
        names = [limit] if isinstance(limit, str) else limit
        wanted = " or ".join(_SCHEMA_TYPES.get(name, name) for name in names)
        got = _show(value) if isinstance(value, float) else _JSON_TYPES.get(type(value), "that")
        return _path(where), f"must be {wanted}, not {got}"
    if rule == "maxLength":
        return _path(where), f"is too long ({len(value)} characters; at most {limit})"
    if rule == "minLength":
        return _path(where), "must not be empty"
    if rule == "pattern":
        return _path(where), f"{_show(value)} is not in the expected form"
    if rule == "enum" and len(limit) > MAX_LISTED_CHOICES:
        wanted = error.schema.get("title", f"one of {len(limit)} allowed values")
        return _path(where), f"{_show(value)} is not {wanted}"
    if rule == "enum":
        return _path(where), f"{_show(value)} is not one of: {', '.join(map(str, limit))}"
    if rule == "format":
        return _path(where), f"{_show(value)} is not a valid {limit}"
    if rule in ("minimum", "maximum"):
        word = "less than the minimum" if rule == "minimum" else "more than the maximum"
        return _path(where), f"{_show(value)} is {word} {limit}"
    if rule == "maxItems":
        return _path(where), f"has {len(value)} items; at most {limit} are allowed"
    if rule == "uniqueItems":
        return _path(where), "lists the same value twice"
    return _path(where), _printable(error.message, 200)


def _record_name(kind: str, index: int, record: Any) -> str:
    """``listing 'OBJ1'`` when the record has a valid id, else ``listing #3`` (1-based)."""
    rid = record.get("id") if isinstance(record, dict) else None
    if rid is not None and _validator("id").is_valid(rid):
        return f"{kind} {rid!r}"
    return f"{kind} #{index + 1}"


_RANK = {name: rank for rank, name in enumerate(("type", "required", "maxLength", "maxItems"))}
"""Which error to report when one field breaks several rules: the most basic first."""


def _schema_errors(kind: str, name: str, record: Any) -> list[RecordError]:
    """Every schema error of one record, at most one per field (the most basic), by field."""
    if not isinstance(record, dict):
        return [RecordError(f"must be an object, not {_JSON_TYPES.get(type(record), 'that')}",
                            record=name)]
    deep = _too_deep(record, MAX_RECORD_DEPTH)
    if deep is not None:
        return [RecordError(f"is nested deeper than {MAX_RECORD_DEPTH} levels", record=name,
                            field=_printable(deep))]
    found: dict[str, RecordError] = {
        where: RecordError("holds a lone surrogate escape (\\ud800–\\udfff), which is not text",
                           record=name, field=where or None)
        for where in _surrogates(record)
    }
    ranked = sorted(_validator(kind).iter_errors(record),
                    key=lambda e: (e.json_path, _RANK.get(str(e.validator), len(_RANK))))
    for error in ranked:
        field_name, message = _explain(error)
        found.setdefault(field_name, RecordError(message, record=name, field=field_name or None))
    return list(found.values())


def _semantic_errors(kind: str, name: str, record: dict[str, Any]) -> list[RecordError]:
    """Checks a schema cannot express, within one (schema-valid) record."""
    errors: list[RecordError] = []
    if kind == "listing":
        if record.get("orientations") and record["category"] != "lantbruk":
            errors.append(RecordError(
                f"only farms (category lantbruk) have orientations; this is {record['category']}",
                record=name, field="orientations"))
        for i, viewing in enumerate(record.get("viewings") or ()):
            for key in ("starts_at", "ends_at"):
                if viewing.get(key) and timestamp(viewing[key]) is None:
                    errors.append(RecordError(f"{_show(viewing[key])} is not a date and time with "
                                              "a UTC offset", record=name,
                                              field=f"viewings[{i}].{key}"))
            start, end = timestamp(viewing["starts_at"]), timestamp(viewing.get("ends_at"))
            if start and end and end < start:
                errors.append(RecordError("ends before it starts", record=name,
                                          field=f"viewings[{i}].ends_at"))
        if record.get("modified_at") and timestamp(record["modified_at"]) is None:
            errors.append(RecordError(f"{_show(record['modified_at'])} is not a date and time "
                                      "with a UTC offset", record=name, field="modified_at"))
        if record.get("contract_date"):
            try:
                date.fromisoformat(record["contract_date"])
            except ValueError:
                errors.append(RecordError(f"{_show(record['contract_date'])} is not a date",
                                          record=name, field="contract_date"))
    if kind == "user":
        main, companies = record.get("main_company"), record.get("companies") or []
        if main and companies and main not in companies:
            errors.append(RecordError(f"{main!r} is not one of the user's companies",
                                      record=name, field="main_company"))
    return errors


def timestamp(value: str | None) -> datetime | None:
    """An RFC 3339 date-time with its offset, or ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def record_errors(kind: str, index: int, record: Any) -> tuple[str, list[RecordError]]:
    """The display name of record ``index`` of ``kind`` and all its problems (schema first;
    the semantic checks only once the schema holds)."""
    name = _record_name(kind, index, record)
    errors = _schema_errors(kind, name, record)
    if not errors:
        errors = _semantic_errors(kind, name, record)
    return name, errors
