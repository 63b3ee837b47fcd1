"""``SYNDICATION_WEB_SECRET`` shorter than 32 bytes is refused at start, never used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from syndication.cli.serve import MIN_SECRET_BYTES, web_secret
from syndication.errors import ConfigurationError


def test_unset_means_a_random_key_per_start() -> None:
    first, second = web_secret({}), web_secret({})
    assert first != second and len(first.encode()) >= MIN_SECRET_BYTES


@pytest.mark.parametrize(
    ("secret", "taken"),
    [
        ("x" * 31, False),
        ("x" * 32, True),
        ("å" * 15, False),  # 30 bytes: counted in bytes, not characters
        ("å" * 16, True),
    ],
)
def test_the_length_is_counted_in_bytes(secret: str, taken: bool) -> None:
    if taken:
        assert web_secret({"SYNDICATION_WEB_SECRET": secret}) == secret
        return
    with pytest.raises(ConfigurationError) as caught:
        web_secret({"SYNDICATION_WEB_SECRET": secret})
    assert f"has {len(secret.encode())} bytes" in str(caught.value)
    assert secret not in str(caught.value)


def test_serve_refuses_a_short_secret_before_it_listens(tmp_path: Path) -> None:
    env = {**os.environ, "SYNDICATION_WEB_SECRET": "kort-hemlighet",
           "SYNDICATION_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "syndication", "serve", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: SYNDICATION_WEB_SECRET has 14 bytes; it needs at least 32"
    )
    assert "kort-hemlighet" not in done.stdout + done.stderr
