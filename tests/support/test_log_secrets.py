"""Secrets stay out of logs: redaction of text and tracebacks, hidden SQL parameters,
and failed logins named only by a short hash of the user name."""

from __future__ import annotations

import io
import json

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from syndication.auth import authenticate, name_ref, throttle_key
from syndication.errors import AuthenticationFailed
from syndication.logs import get_logger, redact_secrets, scrub_text

HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        ("ValueError: password=Hemlis-99 rejected", "ValueError: password=*** rejected"),
        ("{'password': 'Hemlis-99', 'user': 'anna'}", "{'password': '***', 'user': 'anna'}"),
        (f"stored {HASH} for anna", "stored *** for anna"),
        ("header authorization: Bearer-abc", "header authorization: ***"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("token=b'raw-bytes'", "token=b'***'"),
        ("api_key=k-123&x=1", "api_key=***&x=1"),
        ("postgresql://app:pw@db/x", "postgresql://app:***@db/x"),
        ("session_scope(engine) failed for OBJ-1", "session_scope(engine) failed for OBJ-1"),
    ],
)
def test_secrets_in_text_are_masked(raw: str, redacted: str) -> None:
    assert scrub_text(raw) == redacted


def test_the_processor_masks_nested_values_and_secret_keys() -> None:
    event = {"event": f"x {HASH}", "password": "p", "detail": {"token": "t", "note": HASH}}
    assert redact_secrets(None, "error", event) == {
        "event": "x ***", "password": "***", "detail": {"token": "***", "note": "***"}}


def test_a_logged_traceback_is_redacted(captured_logs: io.StringIO) -> None:
    def fails(password: str) -> None:
        raise RuntimeError(f"could not check password={password} against {HASH}")

    secret = "-".join(("Hemlis", "99"))
    try:
        fails(secret)
    except RuntimeError as exc:
        get_logger().error("request_failed", exc_info=exc)
    line = json.loads(captured_logs.getvalue().splitlines()[-1])
    assert "RuntimeError: could not check password=***" in line["exception"]
    assert "Hemlis-99" not in captured_logs.getvalue() and "$argon2" not in captured_logs.getvalue()


def test_sql_errors_carry_no_bound_parameters(engine: Engine) -> None:
    secret = "Hemlis-99-parameter"
    with Session(engine) as session, pytest.raises(SQLAlchemyError) as failed:
        session.execute(text("SELECT * FROM no_such_table WHERE name = :name"), {"name": secret})
    assert "no_such_table" in str(failed.value)
    assert secret not in str(failed.value) and secret not in repr(failed.value)
    assert "parameters hidden" in str(failed.value)


def test_a_failed_login_logs_a_hash_of_the_name_never_the_name(
    seeded_any: Engine, captured_logs: io.StringIO
) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    typed = "Vinter-2026-typed-as-name"
    for _ in range(4):
        with Session(seeded_any) as session, pytest.raises(AuthenticationFailed):
            authenticate(session, typed, "x", hasher=hasher)
    logged = captured_logs.getvalue()
    events = [json.loads(line) for line in logged.splitlines()]
    reference = name_ref(throttle_key(typed))
    assert len(reference) == 12
    assert [e["event"] for e in events if e.get("user_ref") == reference] == [
        "login_failed", "login_failed", "login_failed", "login_throttled"]
    assert typed.casefold() not in logged.casefold()
