"""R14 at the command line, as fresh ``syndication`` processes on a real SQLite store:
``user role``, ``api-key create/list/revoke``, and ``status`` scoped to the user's tenant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from syndication.api_keys import authenticate_key
from syndication.ingest import ingest_document
from syndication.passwords import default_hasher, set_password
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.models import UserRow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Tenant-2026!"


def listing(lid: str, office: str) -> dict[str, Any]:
    return {
        "id": lid, "office_id": office, "category": "villa", "state": "for_sale",
        "price": 2_500_000, "address": {"street": f"Gatan {lid}", "postal_code": "111 22",
                                        "city": "Lund"},
        "images": [{"url": f"https://img.example.se/{lid}.jpg", "order": 0}],
        "marketplaces": ["hemnet"],
    }


def records() -> dict[str, Any]:
    offices = [
        {"id": "K1", "name": "Byrå Ett", "company_id": "AB-1", "licence": ["hemnet"]},
        {"id": "K2", "name": "Byrå Två", "company_id": "AB-2", "licence": ["hemnet"]},
    ]
    users = [
        {"id": "AGENT", "office_id": "K1", "name": "Agnes Agent", "companies": ["AB-1"]},
        {"id": "HELP", "office_id": "K1", "name": "Sara Support"},
    ]
    return {"offices": offices, "users": users,
            "listings": [listing("MINE", "K1"), listing("THEIRS", "K2")]}


class Store:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = f"sqlite:///{folder / 'store.db'}"
        self.engine: Engine = make_engine(self.url)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATION_")}
        self.env.update({"SYNDICATION_DATABASE_URL": self.url, "PYTHONPATH": str(ROOT),
                         "SYNDICATION_OUTBOX": str(folder / "outbox"),
                         "SYNDICATION_PASSWORD": PASSWORD})

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syndication", *argv], cwd=self.folder,
            env={**self.env, **env}, capture_output=True, text=True, timeout=120,
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    found = Store(tmp_path)
    migrate(found.engine)
    report = ingest_document(found.engine, json.dumps(records()).encode())
    assert report.ok, report.errors
    with session_scope(found.engine) as session:
        for user in ("AGENT", "HELP"):
            set_password(session, user, PASSWORD, old_password=None, hasher=default_hasher())
    yield found
    found.engine.dispose()


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout


def role_of(store: Store, user_id: str) -> str:
    with Session(store.engine) as session:
        row = session.get(UserRow, user_id)
        assert row is not None
        return row.role


def test_user_role_sets_and_prints_the_change(store: Store) -> None:
    assert role_of(store, "HELP") == "agent"
    assert ok(store.run("user", "role", "HELP", "support")).strip() == (
        "role of HELP: changed from agent to support"
    )
    assert role_of(store, "HELP") == "support"
    assert "unchanged" in ok(store.run("user", "role", "HELP", "support"))


def test_user_role_refuses_an_unknown_user_or_role(store: Store) -> None:
    unknown_user = store.run("user", "role", "NOBODY", "admin")
    assert unknown_user.returncode == 2 and "no user with id 'NOBODY'" in unknown_user.stderr
    unknown_role = store.run("user", "role", "HELP", "owner")
    assert unknown_role.returncode == 2
    assert "unknown role 'owner'; known roles: agent, support, admin" in unknown_role.stderr
    assert "Traceback" not in unknown_user.stderr + unknown_role.stderr
    assert role_of(store, "HELP") == "agent"


def test_an_ingest_keeps_the_role(store: Store) -> None:
    ok(store.run("user", "role", "HELP", "admin"))
    assert ingest_document(store.engine, json.dumps(records()).encode()).ok
    assert role_of(store, "HELP") == "admin"


def key_of(stdout: str) -> tuple[str, str]:
    """The key printed by ``api-key create`` and its id."""
    keys = [line for line in stdout.splitlines() if line.startswith("sk_")]
    assert len(keys) == 1, stdout
    return keys[0], keys[0].split("_")[1]


def authenticates(store: Store, key: str) -> str | None:
    with session_scope(store.engine) as session:
        principal = authenticate_key(session, key)
    return principal.office_id if principal else None


def test_api_key_lifecycle_in_fresh_processes(store: Store) -> None:
    json_logs = {"SYNDICATION_LOG_FORMAT": "json"}
    created = store.run("api-key", "create", "--office", "K2", **json_logs)
    key, key_id = key_of(ok(created))
    secret = key.split("_", 2)[2]
    assert len(secret) >= 40 and f"API key {key_id} for office K2" in created.stdout
    events = [json.loads(line) for line in created.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "api_key_created" and e["key_id"] == key_id for e in events)
    assert secret not in created.stderr

    assert authenticates(store, key) == "K2"
    assert authenticates(store, key.replace(secret, secret[::-1])) is None

    listed = store.run("api-key", "list", **json_logs)
    assert key_id in ok(listed) and "K2" in listed.stdout
    assert secret not in listed.stdout + listed.stderr
    rows = json.loads(ok(store.run("api-key", "list", "--office", "K2", "--json")))
    assert [(r["key_id"], r["office_id"]) for r in rows] == [(key_id, "K2")]
    assert rows[0]["last_used_at"] is not None and rows[0]["revoked_at"] is None
    assert json.loads(ok(store.run("api-key", "list", "--office", "K1", "--json"))) == []
    assert secret not in json.dumps(rows)

    revoked = store.run("api-key", "revoke", key_id, **json_logs)
    assert f"API key {key_id} revoked" in ok(revoked) and secret not in revoked.stderr
    assert authenticates(store, key) is None
    rows = json.loads(ok(store.run("api-key", "list", "--json")))
    assert rows[0]["revoked_at"] is not None
    assert "already revoked" in ok(store.run("api-key", "revoke", key_id))


def test_api_key_commands_refuse_unknown_offices_and_ids(store: Store) -> None:
    office = store.run("api-key", "create", "--office", "K9")
    assert office.returncode == 2 and "no office with id 'K9'" in office.stderr
    key = store.run("api-key", "revoke", "0123456789abcdef")
    assert key.returncode == 2 and "no API key with id '0123456789abcdef'" in key.stderr


def test_rotation_leaves_both_keys_working_until_the_old_is_revoked(store: Store) -> None:
    old, old_id = key_of(ok(store.run("api-key", "create", "--office", "K1")))
    new, _ = key_of(ok(store.run("api-key", "create", "--office", "K1")))
    assert authenticates(store, old) == authenticates(store, new) == "K1"
    ok(store.run("api-key", "revoke", old_id))
    assert authenticates(store, old) is None and authenticates(store, new) == "K1"


def answer(result: subprocess.CompletedProcess[str], asked: str) -> tuple[int, str, list[Any]]:
    """Exit status, stdout and stderr (JSON log lines without their timestamp) with the id
    asked about replaced, to compare two answers."""
    lines: list[Any] = []
    for line in result.stderr.replace(asked, "<ID>").splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            event.pop("timestamp", None)
            lines.append(event)
        else:
            lines.append(line)
    return result.returncode, result.stdout.replace(asked, "<ID>"), lines


def scoped(store: Store, *argv: str) -> subprocess.CompletedProcess[str]:
    return store.run("status", *argv, SYNDICATION_LOG_FORMAT="json")


def test_another_tenants_listing_is_answered_as_an_unknown_one(store: Store) -> None:
    theirs = scoped(store, "THEIRS", "--user", "AGENT")
    unknown = scoped(store, "NOSUCH", "--user", "AGENT")
    assert answer(theirs, "THEIRS") == answer(unknown, "NOSUCH")
    assert theirs.returncode == 1 and "no listing with id 'THEIRS'" in theirs.stderr
    assert "K2" not in theirs.stdout + theirs.stderr
    assert "MINE" in ok(store.run("status", "MINE", "--user", "AGENT"))

    office = scoped(store, "--office", "K2", "--user", "AGENT")
    no_office = scoped(store, "--office", "K9", "--user", "AGENT")
    assert answer(office, "K2") == answer(no_office, "K9")
    assert office.returncode == 1 and "no office with id 'K2'" in office.stderr
    assert "Byrå Ett" in ok(store.run("status", "--office", "K1", "--user", "AGENT"))


def test_a_user_without_companies_sees_only_their_own_office(store: Store) -> None:
    assert ok(store.run("status", "MINE", "--user", "HELP", "--json"))
    assert store.run("status", "THEIRS", "--user", "HELP").returncode == 1


def test_support_reads_every_office(store: Store) -> None:
    ok(store.run("user", "role", "HELP", "support"))
    document = json.loads(ok(store.run("status", "THEIRS", "--user", "HELP", "--json")))
    assert document["object_id"] == "THEIRS"
    assert "Byrå Två" in ok(store.run("status", "--office", "K2", "--user", "HELP"))


def test_set_password_without_a_terminal_or_variable_says_what_to_set(store: Store) -> None:
    """No terminal to prompt on and no SYNDICATION_NEW_PASSWORD: a usage error naming the
    variable, not a bare ``EOFError``; nothing changes."""
    env = {k: v for k, v in store.env.items() if k != "SYNDICATION_PASSWORD"}
    result = subprocess.run(
        [sys.executable, "-m", "syndication", "user", "set-password", "HELP"], cwd=store.folder,
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    ok(result, 2)
    assert "SYNDICATION_PASSWORD" in result.stderr or "SYNDICATION_NEW_PASSWORD" in result.stderr
    assert "no password given" in result.stderr
