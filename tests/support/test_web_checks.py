"""The pure checks at the web view's edge: ``next`` as a browser reads it, NUL bytes."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndication.web.checks import browser_form, field_with_nul, safe_next

SITE = "https://support.example/login"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/listings/PUB?x=1", "/listings/PUB?x=1"),
        ("/offices/OFF1?state=", "/offices/OFF1?state="),
        ("//evil.example/x", None),
        ("/\\evil.example", None),
        ("\\/evil.example", None),
        ("\\\\evil.example", None),
        ("/\t/evil.example/path", None),
        ("/\n/evil.example", None),
        ("/\r\n/evil.example", None),
        ("\t//evil.example", None),
        (" //evil.example", None),
        ("\x00//evil.example", None),
        ("/\\\tevil.example", None),
        ("/\thost", "/host"),
        ("/a\nb", "/ab"),
        ("/a\x00b", None),
        ("/a\x0bb", None),
        ("https:evil.example", None),
        ("https://evil.example/", None),
        ("javascript:alert(1)", None),
        ("listings/PUB", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_next_table(target: str | None, expected: str | None) -> None:
    assert safe_next(target) == expected


@given(st.text(alphabet=st.sampled_from("/\\\t\n\r :.@%?#ax\x00\x1f"), max_size=12))
def test_a_kept_target_never_leaves_the_site_as_a_browser_reads_it(target: str) -> None:
    kept = safe_next(target)
    if kept is not None:
        landed = urlsplit(urljoin(SITE, browser_form(kept)))
        assert (landed.scheme, landed.netloc) == ("https", "support.example"), kept
        assert kept == browser_form(kept)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([], None),
        ([("q", "Storgatan"), ("state", "")], None),
        ([("q", "a\x00b")], "q"),
        ([("ok", "x"), ("username", "\x00")], "username"),
        ([("na\x00me", "x")], "na\\0me"),
    ],
)
def test_field_with_nul(fields: list[tuple[str, str]], expected: str | None) -> None:
    assert field_with_nul(fields) == expected
