"""The web view's sessions: a signed cookie holding a server-side session token.

Decisions:

* A login issues a session token with :func:`syndication.tokens.issue_token`,
  the same tokens the API hands out; the cookie holds it, the CSRF token and
  the times the session began and was last used. The store keeps only the
  token's hash.
* Every request checks the token with :func:`~syndication.tokens.authenticate_token`,
  which reads the user's role and companies afresh; a revoked token (log-out,
  password change) or an expired one is no login, so a cookie copied before
  a log-out answers as logged-out afterwards.
* The cookie is signed (HMAC-SHA256 under a key derived from the service's
  secret) so its times and CSRF token cannot be forged; idle for
  :data:`IDLE_TIMEOUT` or older than :data:`MAX_AGE` and the session ends.
* The cookie is HttpOnly and SameSite=Strict, and Secure when the service is
  told it is behind HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from syndication.access import UserPrincipal
from syndication.store.db import session_scope
from syndication.tokens import authenticate_token, issue_token, revoke_token

COOKIE_NAME = "syndication_session"
IDLE_TIMEOUT = timedelta(minutes=30)
MAX_AGE = timedelta(hours=8)
COOKIE_LIMIT = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieSigner:
    """Signs and checks the cookie's JSON: ``<payload>.<HMAC-SHA256 of it>``, base64url."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"syndication web session\0" + secret.encode()).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, data: Mapping[str, Any]) -> str:
        payload = _b64(json.dumps(dict(data), separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def loads(self, value: str | None) -> dict[str, Any]:
        """The signed data, or ``{}`` for a missing, oversized, tampered or malformed cookie."""
        if not value or len(value) > COOKIE_LIMIT or value.count(".") != 1:
            return {}
        payload, mac = value.split(".")
        try:
            if not hmac.compare_digest(mac.encode("ascii"), self._mac(payload).encode("ascii")):
                return {}
            data = json.loads(_unb64(payload))
        except (UnicodeError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


@dataclass
class WebSession:
    """One request's session: who is logged in (``principal``), and the cookie to send back."""

    csrf: str
    token: str | None = None
    issued: float | None = None
    seen: float | None = None
    principal: UserPrincipal | None = None
    changed: bool = False

    @property
    def user(self) -> str | None:
        return self.principal.user_id if self.principal is not None else None

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"csrf": self.csrf}
        if self.token is not None:
            data.update(token=self.token, iat=self.issued, seen=self.seen)
        return data

    def csrf_ok(self, sent: str | None) -> bool:
        """The form's CSRF token is this session's (constant-time comparison)."""
        return bool(sent) and hmac.compare_digest(str(sent).encode(), self.csrf.encode())


@dataclass(frozen=True)
class Sessions:
    """Opens, starts and ends web sessions over ``engine`` with ``clock``."""

    engine: Engine
    signer: CookieSigner
    clock: Callable[[], datetime]
    idle_timeout: timedelta = IDLE_TIMEOUT
    max_age: timedelta = MAX_AGE

    def open(self, cookie: str | None) -> WebSession:
        """The session of ``cookie``: logged in when its token is live and it is neither
        idle too long nor too old; otherwise anonymous (a new CSRF token if it had none)."""
        data = self.signer.loads(cookie)
        csrf = data.get("csrf")
        session = WebSession(csrf=csrf if isinstance(csrf, str) and csrf else _new_csrf())
        session.changed = session.csrf != csrf
        token, issued, seen = data.get("token"), data.get("iat"), data.get("seen")
        if not isinstance(token, str):
            return session
        moment = self.clock().timestamp()
        fresh = (
            isinstance(issued, int | float) and isinstance(seen, int | float)
            and moment - seen <= self.idle_timeout.total_seconds()
            and moment - issued <= self.max_age.total_seconds()
        )
        principal = None
        if fresh:
            with session_scope(self.engine) as db:
                principal = authenticate_token(db, token, self.clock())
        session.changed = True
        if principal is None:
            return session
        session.token, session.issued, session.seen = token, float(issued), moment  # type: ignore[arg-type]
        session.principal = principal
        return session

    def start(self, session: WebSession, user_id: str) -> None:
        """Log ``user_id`` in on ``session``: a new token (the old one revoked) and a new
        CSRF token, so nothing of the anonymous session carries over."""
        now = self.clock()
        hours = max(1, math.ceil(self.max_age.total_seconds() / 3600))
        with session_scope(self.engine) as db:
            if session.token is not None:
                revoke_token(db, session.token, now)
            token, _ = issue_token(db, user_id, now, hours=hours)
        session.token, session.issued, session.seen = token, now.timestamp(), now.timestamp()
        session.csrf = _new_csrf()
        session.changed = True

    def end(self, session: WebSession) -> None:
        """Log out: revoke the token in the store, so no copy of the cookie works again."""
        if session.token is not None:
            with session_scope(self.engine) as db:
                revoke_token(db, session.token, self.clock())
        session.token = session.issued = session.seen = None
        session.principal = None
        session.csrf = _new_csrf()
        session.changed = True


def _new_csrf() -> str:
    return secrets.token_urlsafe(32)
