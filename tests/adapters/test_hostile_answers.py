"""Answers from a marketplace are untrusted: a receipt with a DOCTYPE (billion
laughs, external entity), a broken or oversized answer is refused, logged and
not retried; and no token ever reaches a log line."""

from __future__ import annotations

import io
import logging

import pytest
import structlog
from transport_helpers import TOKEN, delivery

from adapters.config import load_marketplaces
from syndication.errors import PermanentError, Rejected, TransientError
from syndication.logs import configure
from syndication.settings import Settings

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<receipt><id>&lol9;</id></receipt>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE receipt [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<receipt><id>&secret;</id><state>published</state></receipt>"""

REMOTE_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE receipt SYSTEM "http://127.0.0.1:9/evil.dtd">
<receipt><id>HN1</id></receipt>"""


@pytest.fixture
def log_output():
    """Render the real logging pipeline (with its redaction) into a buffer."""
    saved = structlog.get_config()
    buffer = io.StringIO()
    configure(level="DEBUG", fmt="json", stream=buffer)
    yield buffer
    structlog.configure(**saved)


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, REMOTE_DTD],
    ids=["billion-laughs", "external-entity", "remote-dtd"],
)
def test_a_receipt_with_a_doctype_is_refused_and_logged(
    sandbox, make_transport, waits, log_output, body
):
    sandbox["hemnet"].faults.garble_next(1, body=body)
    with pytest.raises(PermanentError, match="DOCTYPE|entity") as caught:
        make_transport("hemnet").send(delivery("hemnet"))
    assert not isinstance(caught.value, TransientError)
    assert (caught.value.listing_id, caught.value.marketplace) == ("OBJ-1", "hemnet")
    assert "root:" not in caught.value.message and "lollol" not in caught.value.message
    assert waits == [] and sandbox["hemnet"].call_count() == 1
    logged = log_output.getvalue()
    assert '"event": "answer_refused"' in logged and '"listing_id": "OBJ-1"' in logged


@pytest.mark.parametrize(
    "body", [b"<receipt><id>HN1</id>", b"\x00\x01 not xml", b"<html>busy</html>"]
)
def test_a_broken_receipt_is_permanent(sandbox, make_transport, body):
    sandbox["blocket"].faults.garble_next(1, body=body)
    with pytest.raises(PermanentError) as caught:
        make_transport("blocket").send(delivery("blocket"))
    assert caught.value.marketplace == "blocket"


def test_an_oversized_answer_is_refused_unread(sandbox, make_transport):
    sandbox["hittahem"].faults.garble_next(1, body=b"<receipt>" + b" " * (2 << 20) + b"</receipt>")
    with pytest.raises(PermanentError, match="larger than"):
        make_transport("hittahem").send(delivery("hittahem"))


def test_a_hostile_error_body_still_gives_a_rejection(sandbox, make_transport):
    sandbox["hemnet"].faults.fail_next(1, status=422, body=EXTERNAL_ENTITY)
    with pytest.raises(Rejected, match=r"hemnet answered 422 \(.*DOCTYPE") as caught:
        make_transport("hemnet").send(delivery("hemnet"))
    assert "passwd" not in caught.value.message and "root:" not in caught.value.message


def test_no_token_in_any_log_line(sandbox, tmp_path, log_output, caplog):
    """Config loading, deliveries, retries, rejections and refusals, with
    structlog at DEBUG and the stdlib loggers (urllib3) captured at DEBUG."""
    caplog.set_level(logging.DEBUG)
    path = sandbox.write_marketplaces_file(tmp_path / "mp.toml", token_env="SANDBOX_TOKEN")
    settings = Settings(marketplaces_file=path, environ={"SANDBOX_TOKEN": TOKEN})
    configs = load_marketplaces(settings, sleep=lambda _s: None)
    hemnet = configs["hemnet"].transport
    sandbox["hemnet"].faults.fail_next(1, status=503)
    hemnet.send(delivery("hemnet"))
    sandbox["hemnet"].reject("OBJ-2", "nej")
    with pytest.raises(Rejected):
        hemnet.send(delivery("hemnet", feed_input=_other()))
    sandbox["hemnet"].faults.garble_next(1, body=EXTERNAL_ENTITY)
    with pytest.raises(PermanentError):
        hemnet.send(delivery("hemnet", "update", _other("OBJ-3")))
    assert hemnet.lookup("hemnet", "OBJ-1") is not None
    assert "Bearer" in hemnet.session.headers["Authorization"]
    logged = log_output.getvalue() + caplog.text
    assert "http_retry" in logged and "marketplace_configured" in logged
    assert TOKEN not in logged
    assert TOKEN not in repr(configs)
    for config in configs.values():
        config.transport.close()


def _other(listing_id: str = "OBJ-2"):
    from transport_helpers import listing

    return listing(listing_id)
