"""Hostile XML from outside: ``feeds.validate.parse_untrusted`` refuses it, quickly.

Every document a marketplace sends back (receipts, lookups, inventories) and
every document the sandbox receives goes through ``parse_untrusted``. These
are the classic attacks on XML parsers: entity expansion (billion laughs,
quadratic blow-up), external entities and DTDs (file and network), parameter
entities, XInclude, trees too deep to walk, and bytes that are not XML at all.
Each must end in a :class:`PermanentError` naming what was parsed, without
reading a file, touching the network, or spending more than a moment.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from feeds.validate import parse_untrusted
from syndication.errors import PermanentError

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<receipt><id>&lol9;</id></receipt>
"""

QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * 50_000 + b'">]><receipt><id>'
    + b"&a;" * 50_000 + b"</id></receipt>"
)

EXTERNAL_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE receipt [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<receipt><id>&secret;</id></receipt>
"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE receipt [<!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/evil.dtd"> %remote;]>
<receipt><id>1</id></receipt>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE receipt SYSTEM "http://127.0.0.1:{port}/receipt.dtd">
<receipt><id>1</id></receipt>
"""

XINCLUDE = b"""<?xml version="1.0"?>
<receipt xmlns:xi="http://www.w3.org/2001/XInclude"><id><xi:include href="file:///etc/passwd"
 parse="text"/></id></receipt>
"""

DEEP = b"<a>" * 100_000 + b"</a>" * 100_000


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        self.hits.append(self.path)
        body = b'<!ENTITY leak SYSTEM "file:///etc/hostname">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A loopback HTTP server that records every request an XML parser might make."""
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, QUADRATIC_BLOWUP, EXTERNAL_FILE],
    ids=["billion-laughs", "quadratic-blowup", "external-file-entity"],
)
def test_entity_attacks_are_refused_by_name(body: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        parse_untrusted(body, "hemnet receipt")
    message = str(caught.value)
    assert message.startswith("hemnet receipt")
    assert "lollol" not in message and "xxxx" not in message and "root:" not in message


@pytest.mark.parametrize(
    "template", [PARAMETER_ENTITY, EXTERNAL_DTD], ids=["parameter-entity", "external-dtd"]
)
def test_network_dtds_are_refused_without_a_request(
    template: bytes, listener: tuple[int, list[str]]
) -> None:
    port, hits = listener
    body = template.replace(b"{port}", str(port).encode())
    with pytest.raises(PermanentError, match="blocket receipt"):
        parse_untrusted(body, "blocket receipt")
    assert hits == []


def test_xinclude_is_not_processed() -> None:
    root = parse_untrusted(XINCLUDE, "receipt")
    assert b"root:" not in etree.tostring(root)


def test_a_tree_too_deep_to_walk_is_refused() -> None:
    with pytest.raises(PermanentError, match="not well-formed"):
        parse_untrusted(DEEP, "hittahem inventory")


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfe\x00<", b"<receipt>\xc3\x28</receipt>", b"<receipt>", b"{\"id\": 1}",
     b"<receipt>&undefined;</receipt>"],
    ids=["empty", "binary", "invalid-utf8", "unclosed", "json", "undefined-entity"],
)
def test_malformed_bodies_are_refused_by_name(body: bytes) -> None:
    with pytest.raises(PermanentError, match="hemnet receipt"):
        parse_untrusted(body, "hemnet receipt")


@pytest.mark.parametrize("value", ["<receipt/>", None, 42], ids=["str", "none", "int"])
def test_anything_but_bytes_is_refused(value: object) -> None:
    with pytest.raises(PermanentError, match="expected bytes"):
        parse_untrusted(value, "receipt")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=200).map(lambda t: f"<r>{t}</r>".encode()))
def test_arbitrary_bytes_parse_or_are_refused_cleanly(body: bytes) -> None:
    try:
        root = parse_untrusted(body, "receipt")
    except PermanentError as exc:
        assert str(exc).startswith("receipt")
    else:
        assert root.getroottree().docinfo.doctype == ""
