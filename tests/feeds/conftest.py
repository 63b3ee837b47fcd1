"""Every test here starts with structlog's defaults.

A CLI test elsewhere calls ``syndication.logs.configure()``, which binds log
output to the ``sys.stderr`` of that moment (pytest's capture, closed after
that test); builders log text warnings, so without a reset a later test could
write to a closed stream.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
