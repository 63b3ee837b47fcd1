"""``syndication status`` and ``syndication user``, in-process and as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import factories
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, event
from sqlmodel import Session
from support_data import seed

from syndication.cli import main
from syndication.passwords import check_password, set_password
from syndication.store.db import make_engine, migrate
from syndication.store.models import LoginThrottleRow, UserRow, utcnow

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "Vinter-2026"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A seeded SQLite file the CLI is pointed at; user anna has PASSWORD. In-process
    commands hash with cheap argon2 parameters; the real-process test uses the defaults."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    migrate(engine)
    seed(engine)
    with Session(engine) as session:
        set_password(session, "anna", PASSWORD, old_password=None, hasher=FAST)
        session.commit()
    monkeypatch.setattr("syndication.auth.default_hasher", lambda: FAST)
    monkeypatch.setattr("syndication.cli.users.default_hasher", lambda: FAST)
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", url)
    monkeypatch.setenv("SYNDICATION_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("SYNDICATION_PASSWORD", PASSWORD)
    monkeypatch.delenv("SYNDICATION_MARKETPLACES", raising=False)
    monkeypatch.delenv("SYNDICATION_NEW_PASSWORD", raising=False)
    return engine


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_of_one_listing(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "FAIL", "--user", "anna", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["object_id"] == "FAIL"
    failed = document["marketplaces"][0]
    assert failed["state"] == "failed" and failed["contacts"]["name"]
    assert "history" not in document


def test_json_and_table_carry_public_address_and_attempts(
    store: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from support_data import PUBLIC_URL

    code, out, _ = run(capsys, "status", "PUB", "--user", "anna", "--json")
    assert code == 0
    hemnet = json.loads(out)["marketplaces"][0]
    assert (hemnet["public_url"], hemnet["attempts"]) == (PUBLIC_URL, 1)
    code, out, _ = run(capsys, "status", "--office", "OFF1", "--user", "anna", "--json")
    rows = {(d["object_id"], e["marketplace"]): e
            for d in json.loads(out)["listings"] for e in d["marketplaces"]}
    assert rows[("PUB", "hemnet")]["public_url"] == PUBLIC_URL
    assert all("attempts" in e and "public_url" in e for e in rows.values())
    assert rows[("FAIL", "hemnet")]["attempts"] == 1
    code, out, _ = run(capsys, "status", "--office", "OFF1", "--user", "anna")
    assert PUBLIC_URL in out


def test_table_with_history(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "PUB", "--user", "anna", "--history")
    assert code == 0
    assert "HN-1001" in out and "History:" in out
    history = out.split("History:")[1].strip().splitlines()
    assert [line.split()[3] for line in history] == ["queued", "published", "sent"]


def test_password_prompted_when_not_in_environment(
    store: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNDICATION_PASSWORD")
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or PASSWORD)
    assert run(capsys, "status", "PUB", "--user", "anna")[0] == 0
    assert prompts == ["Password for anna: "]


@pytest.mark.parametrize(
    ("user", "password"), [("anna", "vinter-2026"), ("nobody", PASSWORD), ("anna", "Fel-Losen-9")]
)
def test_wrong_password_and_unknown_user_same_message_and_status(
    store: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    user: str, password: str,
) -> None:
    monkeypatch.setenv("SYNDICATION_PASSWORD", password)
    code, out, err = run(capsys, "status", "PUB", "--user", user)
    assert (code, out, err.splitlines()[-1]) == (3, "", "error: wrong user name or password")
    assert "login_failed" in err and password not in err.replace("login_failed", "")


def test_unknown_listing_after_login(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "NOPE", "--user", "anna")
    assert code == 1 and "no listing with id 'NOPE'" in err


def test_office_view_filters_and_shows_errors(
    store: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status", "--office", "OFF1", "--user", "anna", "--json")
    everything = json.loads(out)
    assert code == 0
    assert [d["object_id"] for d in everything["listings"]] == ["FAIL", "GONE", "NEW", "PUB"]
    code, out, _ = run(capsys, "status", "--office", "OFF1", "--user", "anna", "--json",
                       "--state", "failed")
    failed = json.loads(out)["listings"]
    assert [(d["object_id"], [e["marketplace"] for e in d["marketplaces"]]) for d in failed] == [
        ("FAIL", ["hemnet"])
    ]
    assert failed[0]["marketplaces"][0]["error"] == "Hemnet: 422 missing price"
    code, out, _ = run(capsys, "status", "--office", "OFF1", "--user", "anna",
                       "--state", "failed")
    assert "422 missing price" in out and "contact:" in out and "PUB" not in out
    code, out, _ = run(capsys, "status", "--office", "OFF1", "--user", "anna", "--json",
                       "--marketplace", "blocket")
    assert [d["object_id"] for d in json.loads(out)["listings"]] == ["NEW"]
    assert run(capsys, "status", "--office", "NOPE", "--user", "anna")[0] == 1


def test_office_view_takes_two_queries_whatever_the_number_of_listings(store: Engine) -> None:
    from support_data import CONTACTS

    from syndication.support import office_status

    statements: list[str] = []
    event.listen(store, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    with Session(store) as session:
        result = office_status(session, "OFF1", CONTACTS)
    assert len(result["listings"]) == 4
    assert len(statements) == 2


def test_usage_errors(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "status", "--user", "anna")[0] == 2
    assert run(capsys, "status", "PUB", "--office", "OFF1", "--user", "anna")[0] == 2
    assert run(capsys, "status", "PUB", "--user", "anna", "--state", "failed")[0] == 2


@pytest.mark.parametrize("user", ["anna", "nobody"])
def test_a_throttled_login_says_how_long_to_wait_and_fails_like_a_wrong_password(
    store: Engine, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    with Session(store) as session:
        session.add(LoginThrottleRow(username=user, failures=20, last_failure_at=utcnow()))
        session.commit()
    code, out, err = run(capsys, "status", "PUB", "--user", user)
    assert (code, out) == (3, "")
    message = err.splitlines()[-1]
    wait = re.fullmatch(
        r"error: too many failed logins for this user name; try again in (\d+) s", message)
    assert wait is not None, message
    assert 55 <= int(wait.group(1)) <= 60
    if user == "anna":
        code, _, err = run(capsys, "user", "set-password", user)
        assert code == 3 and "try again in" in err and "the password was not changed" in err


def test_set_password_asks_old_one_and_enforces_policy(
    store: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["Sommar-2027", "Sommar-2027"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    monkeypatch.setenv("SYNDICATION_PASSWORD", "wrong")
    code, _, err = run(capsys, "user", "set-password", "anna")
    assert code == 3 and "wrong user name or password" in err
    monkeypatch.setenv("SYNDICATION_PASSWORD", PASSWORD)
    monkeypatch.setenv("SYNDICATION_NEW_PASSWORD", "sommar")
    code, _, err = run(capsys, "user", "set-password", "anna")
    assert code == 1 and "at least 8 characters" in err
    monkeypatch.delenv("SYNDICATION_NEW_PASSWORD")
    code, out, _ = run(capsys, "user", "set-password", "anna")
    assert code == 0 and out == "password changed for anna\n"
    with Session(store) as session:
        row = session.get(UserRow, "anna")
        assert row is not None and check_password(row, "Sommar-2027", FAST)


def test_set_password_prompts_twice_and_refuses_a_mismatch(
    store: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["Sommar-2027", "Sommar-2028"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    code, _, err = run(capsys, "user", "set-password", "anna")
    assert code == 1 and "differ" in err


def test_import_legacy_csv_and_json(
    store: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Session(store) as session:
        session.add_all(factories.rows(factories.user_record("bo", office_id="OFF1", name="Bo")))
        session.commit()
    csv_file = tmp_path / "legacy.csv"
    csv_file.write_text("user_id,password\nbo,Gammal1\nanna,xyz\nghost,abc\n", "utf-8")
    code, out, _ = run(capsys, "user", "import-legacy", str(csv_file))
    assert code == 1
    assert "1 legacy passwords imported, 1 users kept their new password, 1 not imported" in out
    assert "Gammal1" not in out and "no user with id 'ghost'" in out
    monkeypatch.setenv("SYNDICATION_PASSWORD", "GAMMAL1")
    assert run(capsys, "status", "PUB", "--user", "bo")[0] == 0
    json_file = tmp_path / "legacy.json"
    json_file.write_text(json.dumps([{"user_id": "bo", "password": "Annat"}]), "utf-8")
    assert run(capsys, "user", "import-legacy", str(json_file))[0] == 0
    monkeypatch.setenv("SYNDICATION_PASSWORD", "annat")
    assert run(capsys, "status", "PUB", "--user", "bo")[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("id;pw\n", "utf-8")
    code, _, err = run(capsys, "user", "import-legacy", str(bad))
    assert code == 2 and "user_id and password" in err


def test_real_process_same_exit_and_no_secret_in_output(store: Engine, tmp_path: Path) -> None:
    env = {**os.environ, "SYNDICATION_LOG_FORMAT": "json", "SYNDICATION_LOG_LEVEL": "DEBUG"}
    results = []
    for user, password in (("anna", "Fel-Losen-1"), ("ghost", "Fel-Losen-1")):
        env["SYNDICATION_PASSWORD"] = password
        done = subprocess.run(
            [sys.executable, "-m", "syndication", "status", "PUB", "--user", user],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )
        results.append((done.returncode, done.stdout, done.stderr.splitlines()[-1]))
        assert "Fel-Losen-1" not in done.stderr + done.stdout
        assert "$argon2" not in done.stderr + done.stdout
    assert results[0] == results[1] == (3, "", "error: wrong user name or password")


def test_status_needs_no_delivery_token(store: Engine, tmp_path: Path) -> None:
    """An HTTP marketplace whose token variable is unset: a status still shows, with the
    contacts the marketplaces file gives; only delivering would need the token."""
    marketplaces = tmp_path / "marketplaces.toml"
    marketplaces.write_text(
        '[marketplaces.hemnet]\ntransport = "http"\nurl = "https://feeds.hemnet.example"\n'
        'token_env = "HEMNET_TOKEN_FOR_THIS_TEST"\n'
        '[marketplaces.hemnet.contacts]\nname = "Hemnets jour"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "SYNDICATION_MARKETPLACES": str(marketplaces)}
    env.pop("HEMNET_TOKEN_FOR_THIS_TEST", None)
    done = subprocess.run(
        [sys.executable, "-m", "syndication", "status", "FAIL", "--user", "anna", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["marketplace"]: row for row in json.loads(done.stdout)["marketplaces"]}
    assert rows["hemnet"]["contacts"]["name"] == "Hemnets jour"
    assert "HEMNET_TOKEN_FOR_THIS_TEST" not in done.stderr
