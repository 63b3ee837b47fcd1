"""The one format of the worker's bearer credentials: API keys and session tokens.

A credential is ``<prefix>_<id>_<secret>``: a short prefix saying what it is
(``sk`` an office's API key, ``st`` a user's session token), an id of 16 hex
digits under which the store finds its row without scanning, and a secret of
``secrets.token_urlsafe(32)`` (256 random bits). The id is hex, so the first
two underscores split the three parts even when the secret contains one.

Only :func:`digest` of the secret is stored: SHA-256, unsalted. That is the
standard for high-entropy machine credentials: a slow salted hash (argon2,
as :mod:`syndication.passwords` uses) exists to make guessing a *low*-entropy
human password expensive, but nobody can enumerate 2**256 secrets however
fast the hash, and a fast hash keeps every API call from paying an argon2
verification. :func:`matches` compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "sk"
SESSION_TOKEN_PREFIX = "st"
ID_HEX_DIGITS = 16
SECRET_BYTES = 32
MAX_LENGTH = 200
"""Longer text is refused before any parsing: no credential of this format is that long."""

_ID = re.compile(rf"[0-9a-f]{{{ID_HEX_DIGITS}}}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{20,}")

DUMMY_DIGEST = hashlib.sha256(b"no credential has this secret").hexdigest()
"""Compared against when no row matches, so an unknown id costs what a wrong secret does."""


@dataclass(frozen=True, slots=True)
class Minted:
    """A new credential: the text handed out once, its id and the digest to store."""

    text: str
    id: str
    digest: str


@dataclass(frozen=True, slots=True)
class Presented:
    """A credential as presented, split into its id and its secret."""

    id: str
    secret: str


def digest(secret: str) -> str:
    """The SHA-256 of ``secret`` in hex: what the store keeps instead of it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def matches(stored_digest: str, secret: str) -> bool:
    """True when ``secret`` hashes to ``stored_digest``, compared in constant time."""
    return hmac.compare_digest(stored_digest.encode("ascii"), digest(secret).encode("ascii"))


def mint(prefix: str) -> Minted:
    """A fresh random credential with ``prefix``."""
    credential_id = secrets.token_hex(ID_HEX_DIGITS // 2)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return Minted(f"{prefix}_{credential_id}_{secret}", credential_id, digest(secret))


def parse(prefix: str, presented: str) -> Presented | None:
    """``presented`` split into id and secret when it has the format and ``prefix``;
    ``None`` for anything else (never an error: the caller answers "not authenticated")."""
    if not isinstance(presented, str) or len(presented) > MAX_LENGTH:
        return None
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != prefix:
        return None
    _, credential_id, secret = parts
    if not _ID.fullmatch(credential_id) or not _SECRET.fullmatch(secret):
        return None
    return Presented(credential_id, secret)
