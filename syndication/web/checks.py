"""Pure checks of what a request brings in: where ``next`` may send a browser, and NUL bytes.

:func:`safe_next` decides a redirect target after the normalisation a browser
applies to a ``Location`` (the WHATWG URL parser): leading and trailing C0
controls and spaces are dropped, tabs and newlines anywhere are removed, and a
backslash counts as a slash. Only what is then a path on this site is kept:

==========================  ===================  =================================
``next`` (decoded)          a browser reads      answer
==========================  ===================  =================================
``/listings/PUB?x=1``       the same path        ``/listings/PUB?x=1``
``//host/x``                host ``host``        ``None``
``/\\host``, ``\\/host``    host ``host``        ``None``
``/<TAB>/host/path``        host ``host``        ``None``
``/<TAB>host``              path ``/host``       ``/host``
``https:host``, ``x:y``     another scheme/host  ``None``
``<SP>//host``              host ``host``        ``None``
``/a<LF>b``                 path ``/ab``         ``/ab`` (no newline in a header)
``listings``, ``""``        relative or nothing  ``None``
==========================  ===================  =================================

:func:`field_with_nul` names the first parameter whose name or value holds a
NUL byte: PostgreSQL cannot store one, so the view refuses it at the edge
with a 400 instead of letting the database fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_EDGES = "".join(chr(code) for code in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def browser_form(target: str) -> str:
    """``target`` as a browser reads it from a ``Location``: C0 controls and spaces
    stripped at both ends, tabs and newlines removed, backslashes made slashes."""
    return _TAB_OR_NEWLINE.sub("", target.strip(_EDGES)).replace("\\", "/")


def safe_next(target: str | None) -> str | None:
    """The path to redirect to after login when ``target`` stays on this site, else ``None``.

    The answer is the browser's reading of ``target`` (see the table above), so
    what is checked is exactly what is sent; any control character left makes
    it ``None``.
    """
    if not target:
        return None
    path = browser_form(target)
    if not path.startswith("/") or path.startswith("//") or _CONTROL.search(path):
        return None
    return path


def field_with_nul(fields: Iterable[tuple[str, str]]) -> str | None:
    """The name of the first ``(name, value)`` pair with a NUL byte in either, else ``None``."""
    for name, value in fields:
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "\\0")
    return None
