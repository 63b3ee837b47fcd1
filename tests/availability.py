"""What to do when a test needs a server, a binary or a privilege the machine lacks.

Outside CI the test is skipped with the reason (a developer's laptop may have no
PostgreSQL, no root, no Chromium). Under CI (``CI`` set) it fails instead: CI
installs and starts everything the tests need (``.ci/run``), so a missing part
there is a broken set-up, never a reason to pass without running.
"""

from __future__ import annotations

import os

import pytest

IN_CI = bool(os.environ.get("CI"))


def unavailable(what: str) -> None:
    """Skip (or, under CI, fail) the test because ``what`` is missing."""
    if IN_CI:
        pytest.fail(f"{what}; CI must run this test")
    pytest.skip(what)
