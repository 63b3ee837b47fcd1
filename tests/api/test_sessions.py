"""``POST /sessions`` and ``DELETE /sessions/current`` over real HTTP (R9, R14)."""

from __future__ import annotations

from api_data import PASSWORD
from api_service import Api

from syndication.store.db import session_scope
from syndication.store.models import UserRow
from syndication.throttle import FREE_ATTEMPTS


def test_login_gives_a_token_that_authenticates_until_logout(api: Api) -> None:
    response = api.call("POST", "/sessions", json={"user": "agent", "password": PASSWORD})
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("st_") and response.json()["expires_at"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.call("GET", "/listings/O1/status", headers=bearer).status_code == 200
    assert api.call("DELETE", "/sessions/current", headers=bearer).status_code == 204
    after = api.call("GET", "/listings/O1/status", headers=bearer)
    assert after.status_code == 401
    assert after.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_password_unknown_user_and_no_password_get_one_body(api: Api) -> None:
    with session_scope(api.engine) as session:
        session.add(UserRow(id="nopass", office_id="K1", name="Utan Lösen"))
    answers = [
        api.call("POST", "/sessions", json={"user": user, "password": "Wrong-pass-1"})
        for user in ("agent", "nobody-at-all", "nopass")
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["message"] == "wrong user name or password"


def test_a_throttled_name_is_429_with_retry_after_at_once(api: Api) -> None:
    for _ in range(FREE_ATTEMPTS):
        assert api.call("POST", "/sessions", json={"user": "ghost", "password": "x"}
                        ).status_code == 401
    refused = api.call("POST", "/sessions", json={"user": "ghost", "password": "x"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["code"] == "throttled"


def test_no_credential_or_a_foreign_one_is_401_with_www_authenticate(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic YWdlbnQ6eA=="},
                    {"Authorization": "Bearer st_0123456789abcdef_" + "x" * 43},
                    {"Authorization": "Bearer sk_0123456789abcdef_" + "y" * 43},
                    {"Authorization": "Bearer nonsense"}):
        response = api.call("GET", "/listings/O1/status", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthorized"


def test_an_api_key_cannot_log_out_and_stays_valid(api: Api) -> None:
    assert api.call("DELETE", "/sessions/current", "key:K1").status_code == 403
    assert api.call("GET", "/listings/O1/status", "key:K1").status_code == 200


def test_a_login_body_with_a_nul_byte_is_422_naming_the_field(api: Api) -> None:
    response = api.call("POST", "/sessions", json={"user": "ag\u0000ent", "password": PASSWORD})
    assert response.status_code == 422
    assert response.json()["field"] == "user"
