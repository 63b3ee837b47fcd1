"""Schema validation of the documents we send, and safe parsing of what we receive.

:func:`validate` checks a document against one of our XSDs in ``schemas/``
(compiled once per process) and raises :class:`DocumentInvalid` with a message
naming the line and the element, so a failed transfer tells support what is
wrong. :func:`parse_untrusted` is the only way a document from outside (a
marketplace receipt, a document arriving at the sandbox) is parsed: no network,
no DTD, no entity expansion, no huge trees, and any DOCTYPE is refused outright
rather than quietly dropped.
"""

from __future__ import annotations

import threading

from lxml import etree

import schemas
from syndication.errors import DocumentInvalid, PermanentError

MAX_ERRORS = 3
"""How many validation errors a :class:`DocumentInvalid` message lists."""


_parsers = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's parser for untrusted XML: made once per thread (an lxml parser must
    not be shared between threads, and making one per document costs more than parsing
    a receipt)."""
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
        )
    return parser


_compiled = threading.local()
_compile_lock = threading.Lock()


def schema(name: str) -> etree.XMLSchema:
    """The compiled XSD ``schemas/<name>``, compiled once per thread.

    An lxml validator keeps its error log on itself and must not be used by two
    threads at once, and libxml2 does not compile schemas safely in parallel:
    so each worker thread gets validators of its own, compiled one at a time.
    """
    cache: dict[str, etree.XMLSchema] | None = getattr(_compiled, "schemas", None)
    if cache is None:
        cache = _compiled.schemas = {}
    xsd = cache.get(name)
    if xsd is None:
        path = schemas.path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no schema {name!r} in {path.parent}")
        with _compile_lock:
            xsd = cache[name] = etree.XMLSchema(etree.parse(str(path), _parser()))
    return xsd


def parse_untrusted(data: bytes, what: str) -> etree._Element:
    """Parse ``data`` from outside and return its root element.

    Refuses, with a :class:`PermanentError` naming ``what``: anything but
    bytes, XML that is not well-formed, and any document with a DOCTYPE (and so
    any entity declaration), which has no place in the documents we exchange.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PermanentError(f"{what}: expected bytes, got {type(data).__name__}")
    try:
        root = etree.fromstring(bytes(data), _parser())
    except etree.XMLSyntaxError as exc:
        raise PermanentError(f"{what} is not well-formed XML: {exc}") from None
    if root is None:
        raise PermanentError(f"{what} is empty")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise PermanentError(f"{what} has a DOCTYPE (DTDs and entity declarations are refused)")
    return root


def _message(schema_name: str, log: etree._ListErrorLog) -> str:
    """The first :data:`MAX_ERRORS` errors of ``log``, each with its line and element."""
    errors = list(log)
    parts = [f"line {e.line}: {e.message}" for e in errors[:MAX_ERRORS]]
    more = len(errors) - MAX_ERRORS
    if more > 0:
        parts.append(f"and {more} more")
    return f"document does not validate against {schema_name}: " + "; ".join(parts)


def validate_element(
    schema_name: str,
    root: etree._Element,
    *,
    listing_id: str | None = None,
    marketplace: str | None = None,
) -> None:
    """Validate an element tree in memory; on failure re-parse its serialization
    so the :class:`DocumentInvalid` message can give line numbers."""
    xsd = schema(schema_name)
    if xsd.validate(root):
        return
    in_memory = _message(schema_name, xsd.error_log)
    document = etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)
    validate(schema_name, document, listing_id=listing_id, marketplace=marketplace)
    raise DocumentInvalid(in_memory, listing_id=listing_id, marketplace=marketplace)


def validate(
    schema_name: str,
    document: bytes,
    *,
    listing_id: str | None = None,
    marketplace: str | None = None,
) -> None:
    """Check ``document`` against ``schemas/<schema_name>``.

    Raises :class:`DocumentInvalid` naming the line and the element of the
    first errors; a document that is not even well-formed (or has a DOCTYPE)
    is invalid too.
    """
    try:
        root = parse_untrusted(document, f"document for {schema_name}")
    except PermanentError as exc:
        raise DocumentInvalid(exc.message, listing_id=listing_id, marketplace=marketplace) from None
    xsd = schema(schema_name)
    if not xsd.validate(root):
        raise DocumentInvalid(
            _message(schema_name, xsd.error_log), listing_id=listing_id, marketplace=marketplace
        )
