"""Commands that only read never migrate, never write and never create a store.

Each runs as a fresh process against a real store (SQLite and PostgreSQL) one
revision behind, and against one that does not exist or is empty; each must
refuse with exit status 2 and a message naming ``syndication migrate`` and
leave the store exactly as it was. ``serve`` writes (the API stores records
and transfers, logins their throttle and session tokens) but, like a long
running worker, never migrates: it is refused the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from store_states import free_port, previous_revision, run_cli, snapshot, store_behind

from syndication.demo import example_records
from syndication.store.schema import (
    StoreNotMigrated,
    make_read_only_engine,
    newest_revision,
    open_read_only,
)

READ_ONLY_COMMANDS: dict[str, list[str]] = {
    "status": ["status", "OBJ-GBG-1001", "--user", "USR-ANNA"],
    "preview": ["preview", "OBJ-GBG-1001", "hemnet"],
    "export": ["export", "hemnet", "--office", "KTR-GBG", "-o", "{tmp}/feed.xml"],
    "reconcile": ["reconcile", "--office", "KTR-GBG"],
    "final-prices-dry-run": ["final-prices", "--dry-run"],
    "photos-problems": ["photos", "--problems"],
    "api-key-list": ["api-key", "list"],
    "reconcile-last": ["reconcile", "--last", "--json"],
    "holds-list": ["holds", "list", "--json"],
}

NEVER_MIGRATING_COMMANDS: dict[str, list[str]] = {
    **READ_ONLY_COMMANDS,
    "serve": ["serve", "--port", "{port}"],
}
"""The read-only commands, and ``serve``, which writes but never migrates."""


def argv_of(name: str, tmp_path: Path) -> list[str]:
    return [
        part.format(port=free_port(), tmp=tmp_path) for part in NEVER_MIGRATING_COMMANDS[name]
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL: a SQLite file not yet created, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("command", sorted(NEVER_MIGRATING_COMMANDS))
def test_a_store_one_revision_behind_is_refused_and_left_unchanged(
    store_url: str, tmp_path: Path, command: str
) -> None:
    store_behind(store_url)
    before = snapshot(store_url)
    assert before["revision"] == previous_revision()
    result = run_cli(argv_of(command, tmp_path), store_url, tmp_path,
                     SYNDICATION_PASSWORD="whatever-it-is")
    assert result.returncode == 2, result.stderr
    assert "syndication migrate" in result.stderr
    assert f"revision {previous_revision()}" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(store_url) == before
    assert not (tmp_path / "feed.xml").exists()


@pytest.mark.parametrize("command", sorted(NEVER_MIGRATING_COMMANDS))
def test_a_missing_or_empty_store_is_refused_and_not_created(
    store_url: str, tmp_path: Path, command: str
) -> None:
    result = run_cli(argv_of(command, tmp_path), store_url, tmp_path,
                     SYNDICATION_PASSWORD="whatever-it-is")
    assert result.returncode == 2, result.stderr
    assert "syndication migrate" in result.stderr
    assert "Traceback" not in result.stderr
    if store_url.startswith("sqlite"):
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    else:
        engine = make_read_only_engine(store_url)
        try:
            with engine.connect() as conn:
                tables = conn.execute(
                    text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                ).scalar_one()
        finally:
            engine.dispose()
        assert tables == 0


def test_the_read_only_engine_cannot_write(store_url: str, tmp_path: Path) -> None:
    """The database itself refuses a write on an engine from ``open_read_only``."""
    store_behind(store_url)
    run_cli(["migrate"], store_url, tmp_path).check_returncode()
    offices = len(json.loads(example_records())["offices"])
    engine = open_read_only(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM office")).scalar_one() == offices
        with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
            conn.execute(text("DELETE FROM office"))
        message = str(caught.value).lower()
        assert "readonly" in message or "read-only" in message or "read only" in message
    finally:
        engine.dispose()
    assert snapshot(store_url)["counts"]["office"] == offices  # type: ignore[index]


def test_open_read_only_names_the_revisions(store_url: str) -> None:
    store_behind(store_url)
    with pytest.raises(StoreNotMigrated) as caught:
        open_read_only(store_url)
    newest, _ = newest_revision()
    assert f"revision {previous_revision()}, this version needs {newest}" in str(caught.value)


def test_messages_hide_the_database_password(postgres_url: str) -> None:
    store_behind(postgres_url)
    assert ":postgres@" in postgres_url
    with pytest.raises(StoreNotMigrated) as caught:
        open_read_only(postgres_url)
    assert ":postgres@" not in str(caught.value) and ":***@" in str(caught.value)


def test_read_only_commands_work_on_a_current_store_without_changing_it(
    store_url: str, tmp_path: Path
) -> None:
    """Once migrated, the same commands run (in fresh processes) and the store stays as it was."""
    store_behind(store_url)
    run_cli(["migrate"], store_url, tmp_path).check_returncode()
    before = snapshot(store_url)
    expected = {"preview": 0, "export": 0, "final-prices-dry-run": 0, "photos-problems": 0,
                "reconcile": 1, "api-key-list": 0, "reconcile-last": 2, "holds-list": 1}
    for command, status in expected.items():
        result = run_cli(argv_of(command, tmp_path), store_url, tmp_path)
        assert result.returncode == status, (command, result.stdout, result.stderr)
    assert (tmp_path / "feed.xml").read_bytes().startswith(b"<?xml")
    assert snapshot(store_url) == before


def test_status_on_a_read_only_store_still_keeps_the_login_throttle(
    store_url: str, tmp_path: Path
) -> None:
    """The login's own bookkeeping (R9) is the one write: a failure is counted, a success
    clears it, and what is shown is read through the read-only engine."""
    from sqlmodel import Session

    from syndication.passwords import default_hasher, set_password
    from syndication.store.db import make_engine
    from syndication.store.models import LoginThrottleRow

    store_behind(store_url)
    run_cli(["migrate"], store_url, tmp_path).check_returncode()
    engine = make_engine(store_url)
    try:
        with Session(engine) as session:
            set_password(session, "USR-ANNA", "Vinter-2026", old_password=None,
                         hasher=default_hasher())
            session.commit()
        argv = argv_of("status", tmp_path)
        wrong = run_cli(argv, store_url, tmp_path, SYNDICATION_PASSWORD="not-it")
        assert wrong.returncode == 3, wrong.stderr
        with Session(engine) as session:
            row = session.get(LoginThrottleRow, "usr-anna")
            assert row is not None and row.failures == 1
        right = run_cli([*argv, "--json"], store_url, tmp_path,
                        SYNDICATION_PASSWORD="Vinter-2026")
        assert right.returncode == 0, right.stderr
        assert '"object_id": "OBJ-GBG-1001"' in right.stdout
        with Session(engine) as session:
            assert session.get(LoginThrottleRow, "usr-anna") is None
    finally:
        engine.dispose()


def test_serve_on_a_current_store_writes_but_never_migrates(
    store_url: str, tmp_path: Path
) -> None:
    """On a migrated store ``serve`` answers and records a failed login (a write), and
    the schema is left at its revision: serving never migrates."""
    import subprocess
    import sys

    import requests
    from sqlmodel import Session
    from store_states import cli_env

    from syndication.store.db import make_engine
    from syndication.store.models import LoginThrottleRow

    store_behind(store_url)
    run_cli(["migrate"], store_url, tmp_path).check_returncode()
    before = snapshot(store_url)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "syndication", "serve", "--port", str(port), "--threads", "2"],
        cwd=tmp_path, env=cli_env(store_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line + server.stderr.read()
        http = requests.Session()
        form = http.get(f"http://127.0.0.1:{port}/login", timeout=10)
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = http.post(f"http://127.0.0.1:{port}/login", timeout=30, allow_redirects=False,
                           data={"csrf_token": token, "username": "USR-ANNA", "password": "x"})
        assert answer.status_code == 401
    finally:
        server.terminate()
        server.communicate(timeout=60)
    after = snapshot(store_url)
    assert after["revision"] == before["revision"] and after["tables"] == before["tables"]
    engine = make_engine(store_url)
    try:
        with Session(engine) as session:
            row = session.get(LoginThrottleRow, "usr-anna")
            assert row is not None and row.failures == 1
    finally:
        engine.dispose()
