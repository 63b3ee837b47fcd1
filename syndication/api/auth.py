"""Who is asking: the bearer credential of every request, and the session routes.

``Authorization: Bearer st_…`` is a user's session token
(:mod:`syndication.tokens`), ``Bearer sk_…`` an office's API key
(:mod:`syndication.api_keys`); :func:`principal_dependency` turns either into
a :class:`~syndication.access.Principal`, and anything else (no header, another
scheme, an expired, revoked, wrong or unknown credential) into the one 401
with ``WWW-Authenticate: Bearer``, so nothing tells which it was.

``POST /sessions`` logs in with :func:`syndication.auth.authenticate`, the
CLI's and the web view's way in (R9): a wrong password, an unknown user and a
user without a password get the same 401 body; a name inside its throttle
window gets 429 with ``Retry-After`` at once, the password unchecked.
The login runs on the server's worker threads and never sleeps.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from syndication import credentials
from syndication.access import ApiKeyPrincipal, Principal, UserPrincipal
from syndication.api.errors import ApiError, ApiRoute, responses, unauthorized
from syndication.api.models import LoginBody, SessionOut
from syndication.api_keys import authenticate_key
from syndication.auth import authenticate
from syndication.errors import AuthenticationFailed, LoginThrottled
from syndication.service import ServiceContext
from syndication.store.db import session_scope
from syndication.tokens import authenticate_token, issue_token, revoke_token

BEARER = HTTPBearer(auto_error=False, description="a session token (st_…) or an office API key "
                    "(sk_…)")

PrincipalDependency = Callable[..., Principal]


def principal_ref(principal: Principal) -> str:
    """A principal's stable name for bookkeeping: ``user:<id>`` or ``key:<key id>``."""
    if isinstance(principal, ApiKeyPrincipal):
        return f"key:{principal.key_id}"
    return f"user:{principal.user_id}"


def principal_dependency(context: ServiceContext) -> PrincipalDependency:
    """The dependency giving each request's principal, or raising the one 401."""

    def principal(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        if bearer is None:
            raise unauthorized()
        presented = bearer.credentials
        found: Principal | None = None
        with session_scope(context.engine) as session:
            if presented.startswith(f"{credentials.SESSION_TOKEN_PREFIX}_"):
                found = authenticate_token(session, presented, context.clock())
            elif presented.startswith(f"{credentials.API_KEY_PREFIX}_"):
                found = authenticate_key(session, presented, context.clock())
        if found is None:
            raise unauthorized("the bearer credential is not a live session token or API key")
        return found

    return principal


def sessions_router(context: ServiceContext, principal: PrincipalDependency) -> APIRouter:
    """``POST /sessions`` (log in) and ``DELETE /sessions/current`` (log out)."""
    router = APIRouter(route_class=ApiRoute, tags=["sessions"])

    @router.post("/sessions", status_code=201, response_model=SessionOut,
                 responses=responses(400, 401, 413, 422, 429), summary="Log in")
    def log_in(body: LoginBody) -> SessionOut:
        """A session token for ``user`` when ``password`` is theirs (R9)."""
        with session_scope(context.engine) as session:
            try:
                user = authenticate(session, body.user, body.password, context.clock,
                                    hasher=context.hasher)
            except LoginThrottled as exc:
                raise ApiError(429, str(exc), headers={"Retry-After": str(exc.retry_after)}
                               ) from None
            except AuthenticationFailed as exc:
                raise unauthorized(str(exc)) from None
            token, expires_at = issue_token(session, user.id, context.clock(),
                                            hours=context.settings.token_hours)
        return SessionOut(token=token, expires_at=expires_at)

    @router.delete("/sessions/current", status_code=204, response_class=Response,
                   responses=responses(401, 403), summary="Log out")
    def log_out(
        who: Annotated[Principal, Depends(principal)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Response:
        """Revoke the session token this request presents; an API key is no session (403:
        revoke keys with ``syndication api-key revoke``)."""
        if not isinstance(who, UserPrincipal) or bearer is None:
            raise ApiError(403, "an API key is not a session; revoke it with "
                           "'syndication api-key revoke'")
        with session_scope(context.engine) as session:
            revoke_token(session, bearer.credentials, context.clock())
        return Response(status_code=204)

    return router
