"""Passwords of the users who may query transfer status (R9, seed "Starka lösenord").

Policy, as the desktop's "starkt lösenord" dialog states it: at least eight
characters, from at least three of the four groups upper case, lower case,
digits and other characters. :func:`weaknesses` says what a password lacks;
:func:`require_strong` raises :class:`WeakPassword` with that message.

Storage: only argon2 hashes (argon2-cffi's :class:`PasswordHasher`), never the
password. A password registered by an old desktop version is *legacy*: it was
case-insensitive there, so it is stored as the hash of its case-folded form
with ``password_legacy`` set, and the password given at login is case-folded
before it is checked. Changing a password needs the old one, takes a strong
password and stores it for an exact match (the legacy flag is cleared). A hash
made with older argon2 parameters is re-hashed at the next successful login.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session

from syndication.errors import SyndicationError
from syndication.logs import get_logger
from syndication.store.models import UserRow, utcnow
from syndication.tokens import revoke_user_tokens

MIN_LENGTH = 8
MIN_GROUPS = 3
GROUPS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("upper case letters", str.isupper),
    ("lower case letters", str.islower),
    ("digits", str.isdigit),
    ("other characters", lambda ch: not (ch.isupper() or ch.islower() or ch.isdigit())),
)
"""The four character groups of the policy, each with its test for one character."""


class PasswordError(SyndicationError):
    """A password cannot be set or changed; the message says why (never the password)."""


class WeakPassword(PasswordError):
    """A new password does not meet the strong policy; the message lists what is missing."""


class UnknownUser(PasswordError, LookupError):
    """A password was given for a user that is not stored (administration only, never login)."""


@cache
def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's current recommended parameters (one per process)."""
    return PasswordHasher()


def normalized(password: str) -> str:
    """The password in Unicode NFC, so the same keys typed on two systems match."""
    return unicodedata.normalize("NFC", password)


def legacy_form(password: str) -> str:
    """The case-insensitive form a legacy password is hashed and checked in."""
    return normalized(password).casefold()


def groups_of(password: str) -> list[str]:
    """The names of the character groups ``password`` draws from, in policy order."""
    return [name for name, test in GROUPS if any(test(ch) for ch in password)]


def weaknesses(password: str) -> list[str]:
    """What ``password`` lacks to be strong, as sentences; empty when it is strong."""
    missing: list[str] = []
    length = len(normalized(password))
    if length < MIN_LENGTH:
        missing.append(f"at least {MIN_LENGTH} characters (it has {length})")
    present = groups_of(password)
    if len(present) < MIN_GROUPS:
        absent = [name for name, _ in GROUPS if name not in present]
        missing.append(
            f"characters from at least {MIN_GROUPS} of the 4 groups upper case, lower case, "
            f"digits and other characters (it has {len(present)}; add "
            f"{' or '.join(absent)})"
        )
    return missing


def require_strong(password: str) -> None:
    """Raise :class:`WeakPassword` naming everything ``password`` lacks."""
    missing = weaknesses(password)
    if missing:
        raise WeakPassword("the password is not strong enough: it needs " + "; and ".join(missing))


def hash_password(password: str, hasher: PasswordHasher, *, legacy: bool = False) -> str:
    """The argon2 hash stored for ``password`` (of its case-folded form when ``legacy``)."""
    return hasher.hash(legacy_form(password) if legacy else normalized(password))


def verify_hash(stored: str, password: str, hasher: PasswordHasher, *, legacy: bool) -> bool:
    """True when ``password`` matches ``stored``; argon2 compares in constant time."""
    candidate = legacy_form(password) if legacy else normalized(password)
    try:
        return bool(hasher.verify(stored, candidate))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=8)
def _dummy_hash(parameters: tuple[Any, ...]) -> str:
    kind, salt_len, hash_len, time_cost, memory_cost, parallelism = parameters
    hasher = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
        hash_len=hash_len, salt_len=salt_len, type=kind,
    )
    return hasher.hash("not a password anyone has: only spends the time of a check")


def burn_verification(password: str, hasher: PasswordHasher) -> None:
    """Spend the time of one real check for a user without a password or who does not
    exist, so a failed login takes as long whether the user exists or not. The dummy
    hash is made once per set of argon2 parameters, never during a login after that."""
    verify_hash(_dummy_hash(_parameters(hasher)), password, hasher, legacy=False)


def _parameters(hasher: PasswordHasher) -> tuple[Any, ...]:
    return (hasher.type, hasher.salt_len, hasher.hash_len, hasher.time_cost,
            hasher.memory_cost, hasher.parallelism)


def check_password(
    user: UserRow | None, password: str, hasher: PasswordHasher, *, now: datetime | None = None
) -> bool:
    """True when ``password`` is ``user``'s; rehashes a match made with older parameters.

    An unknown user or one without a password costs one dummy verification and
    is ``False``, exactly like a wrong password.
    """
    if user is None or not user.password_hash:
        burn_verification(password, hasher)
        return False
    if not verify_hash(user.password_hash, password, hasher, legacy=user.password_legacy):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password, hasher, legacy=user.password_legacy)
        user.updated_at = now or utcnow()
        get_logger(user=user.id).info("password_rehashed")
    return True


def set_password(
    session: Session,
    user_id: str,
    new_password: str,
    *,
    old_password: str | None,
    hasher: PasswordHasher,
    now: datetime | None = None,
) -> UserRow:
    """Set or change ``user_id``'s password; the caller's session commits.

    A user who has a password must give it as ``old_password`` (legacy ones
    without regard to case), so nobody else can change it. The new password
    must be strong; it is stored for an exact match, which upgrades a legacy
    password. Every session token of the user is revoked in the same
    transaction (:func:`syndication.tokens.revoke_user_tokens`): no token
    outlives the password it was issued under.
    """
    user = session.get(UserRow, user_id)
    if user is None:
        raise UnknownUser(f"no user with id {user_id!r}")
    if user.password_hash:
        if old_password is None:
            raise PasswordError("the old password is required to change a password")
        if not verify_hash(user.password_hash, old_password, hasher, legacy=user.password_legacy):
            raise PasswordError("the old password is wrong; the password was not changed")
    require_strong(new_password)
    was_legacy = user.password_legacy
    moment = now or utcnow()
    user.password_hash = hash_password(new_password, hasher)
    user.password_legacy = False
    user.password_changed_at = moment
    user.updated_at = moment
    session.add(user)
    revoke_user_tokens(session, user_id, moment)
    get_logger(user=user_id).info("password_set", upgraded_from_legacy=was_legacy)
    return user


def import_legacy(
    session: Session,
    user_id: str,
    legacy_password: str,
    *,
    hasher: PasswordHasher,
    now: datetime | None = None,
) -> bool:
    """Store an old desktop password for ``user_id`` as legacy (case-insensitive).

    Returns ``False`` and changes nothing when the user already has a password
    set in this system that is not legacy: an import never downgrades one.
    Legacy passwords are not held to the strong policy (the old versions did not
    have it); they must not be empty.
    """
    user = session.get(UserRow, user_id)
    if user is None:
        raise UnknownUser(f"no user with id {user_id!r}")
    if not legacy_password:
        raise PasswordError(f"user {user_id!r}: the legacy password is empty")
    if user.password_hash and not user.password_legacy:
        return False
    moment = now or utcnow()
    user.password_hash = hash_password(legacy_password, hasher, legacy=True)
    user.password_legacy = True
    user.password_changed_at = moment
    user.updated_at = moment
    session.add(user)
    revoke_user_tokens(session, user_id, moment)
    return True
