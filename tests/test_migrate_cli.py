"""``syndication migrate [--check]``, and who else migrates: writers yes, the worker and
the scheduler only when told to (``--migrate``, ``SYNDICATION_MIGRATE_ON_START``).

Every command runs as a fresh process on a real store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_states import ROOT, cli_env, previous_revision, run_cli, snapshot, store_behind

from syndication.errors import ConfigurationError
from syndication.settings import Settings
from syndication.store.schema import newest_revision

NEWEST = newest_revision()[0]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL: a SQLite file not yet created, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def revision(url: str) -> object:
    return snapshot(url)["revision"]


def test_check_exits_1_when_behind_and_changes_nothing(store_url: str, tmp_path: Path) -> None:
    store_behind(store_url)
    before = snapshot(store_url)
    result = run_cli(["migrate", "--check"], store_url, tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"current revision {previous_revision()}, newest {NEWEST}" in result.stdout
    assert "syndication migrate" in result.stdout
    assert snapshot(store_url) == before


def test_check_of_a_missing_sqlite_file_is_behind_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    result = run_cli(["migrate", "--check"], url, tmp_path)
    assert result.returncode == 1
    assert f"current revision none (no schema yet), newest {NEWEST}" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_migrate_brings_the_store_up_and_says_so(store_url: str, tmp_path: Path) -> None:
    store_behind(store_url)
    counts: dict[str, int] = snapshot(store_url)["counts"]  # type: ignore[assignment]
    result = run_cli(["migrate"], store_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"migrated from revision {previous_revision()} to {NEWEST}" in result.stdout
    after = snapshot(store_url)
    assert after["revision"] == NEWEST
    assert "ix_transfer_event_request" in after["indexes"]["transfer_event"]  # type: ignore[index]
    after_counts: dict[str, int] = after["counts"]  # type: ignore[assignment]
    assert {table: after_counts[table] for table in counts} == counts
    assert all(after_counts[table] == 0 for table in set(after_counts) - set(counts))
    again = run_cli(["migrate"], store_url, tmp_path)
    assert again.returncode == 0
    assert f"already at the newest schema (revision {NEWEST})" in again.stdout
    check = run_cli(["migrate", "--check"], store_url, tmp_path)
    assert check.returncode == 0
    assert f"at the newest schema (revision {NEWEST})" in check.stdout


def test_migrate_creates_a_fresh_store(store_url: str, tmp_path: Path) -> None:
    result = run_cli(["migrate"], store_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"created the schema at revision {NEWEST}" in result.stdout
    assert revision(store_url) == NEWEST


def test_a_store_at_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    """A store migrated by a newer version: neither --check nor migrate pretends to judge it."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    run_cli(["migrate"], url, tmp_path).check_returncode()
    import sqlite3

    with sqlite3.connect(tmp_path / "store.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for argv in (["migrate", "--check"], ["migrate"], ["photos", "--problems"]):
        result = run_cli(argv, url, tmp_path)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        assert "revision 9999" in result.stderr and "does not know" in result.stderr


def test_help_lists_migrate_and_the_worker_flags(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    top = " ".join(run_cli(["--help"], url, tmp_path).stdout.split())
    assert "migrate upgrade the store to the newest schema" in top
    own = " ".join(run_cli(["migrate", "--help"], url, tmp_path).stdout.split())
    assert "exit 0 when current, 1 when behind" in own
    for command in ("worker", "scheduler"):
        text = " ".join(run_cli([command, "--help"], url, tmp_path).stdout.split())
        assert "--migrate" in text and "SYNDICATION_MIGRATE_ON_START" in text, command
    assert list(tmp_path.iterdir()) == []


def test_a_writing_command_migrates_the_store_itself(store_url: str, tmp_path: Path) -> None:
    store_behind(store_url)
    records = tmp_path / "records.json"
    records.write_bytes((ROOT / "examples" / "records.json").read_bytes())
    result = run_cli(["ingest", str(records)], store_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert revision(store_url) == NEWEST


def test_the_scheduler_refuses_a_store_behind_unless_told_to_migrate(
    store_url: str, tmp_path: Path
) -> None:
    store_behind(store_url)
    before = snapshot(store_url)
    refused = run_cli(["scheduler", "--once", "final_prices"], store_url, tmp_path)
    assert refused.returncode == 2
    assert "syndication migrate" in refused.stderr and "Traceback" not in refused.stderr
    assert snapshot(store_url) == before
    flagged = run_cli(["scheduler", "--once", "final_prices", "--migrate"], store_url, tmp_path)
    assert flagged.returncode == 0, flagged.stderr
    assert "final_prices: enqueued" in flagged.stdout
    assert revision(store_url) == NEWEST


def test_the_scheduler_migrates_on_start_by_setting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store_behind(url)
    result = run_cli(["scheduler", "--once", "photos"], url, tmp_path,
                     SYNDICATION_MIGRATE_ON_START="1")
    assert result.returncode == 0, result.stderr
    assert revision(url) == NEWEST


def test_the_worker_refuses_a_store_behind(store_url: str, tmp_path: Path) -> None:
    store_behind(store_url)
    before = snapshot(store_url)
    result = run_cli(["worker"], store_url, tmp_path,
                     SYNDICATION_BROKER_URL="redis://127.0.0.1:9/0")
    assert result.returncode == 2
    assert "syndication migrate" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(store_url) == before


def test_dramatiq_on_worker_py_refuses_a_store_behind(tmp_path: Path, redis_url: str) -> None:
    """``dramatiq worker`` run directly loads worker.py, which checks the store the same way."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store_behind(url)
    before = snapshot(url)
    result = subprocess.run(
        [sys.executable, "-m", "dramatiq", "worker", "--processes", "1", "--threads", "1"],
        cwd=ROOT, env=cli_env(url, SYNDICATION_BROKER_URL=redis_url),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0
    assert "run `syndication migrate` first" in result.stderr
    assert snapshot(url) == before


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_the_worker_migrates_when_told_to(
    store_url: str, tmp_path: Path, redis_url: str, how: str
) -> None:
    store_behind(store_url)
    argv = [sys.executable, "-m", "syndication", "worker", "--processes", "1", "--threads", "1"]
    extra = {"SYNDICATION_BROKER_URL": redis_url}
    if how == "flag":
        argv.append("--migrate")
    else:
        extra["SYNDICATION_MIGRATE_ON_START"] = "yes"
    process = subprocess.Popen(argv, cwd=ROOT, env=cli_env(store_url, **extra),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while revision(store_url) != NEWEST and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.2)
        assert revision(store_url) == NEWEST
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize(("raw", "expected"), [
    ("", False), ("1", True), ("true", True), ("Yes", True), ("on", True),
    ("0", False), ("false", False), ("no", False), ("OFF", False),
])
def test_migrate_on_start_setting(raw: str, expected: bool) -> None:
    settings = Settings.from_env({"SYNDICATION_MIGRATE_ON_START": raw})
    assert settings.migrate_on_start is expected


def test_migrate_on_start_setting_rejects_other_words() -> None:
    with pytest.raises(ConfigurationError, match="SYNDICATION_MIGRATE_ON_START"):
        Settings.from_env({"SYNDICATION_MIGRATE_ON_START": "perhaps"})



STARTER = """
import sys
from syndication.store.db import make_engine, migrate
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrate(engine)
engine.dispose()
"""


def test_workers_migrating_at_once_take_turns(postgres_url: str) -> None:
    """Several processes migrating one PostgreSQL store at the same moment (workers
    started together with --migrate) all succeed; without the lock they collide."""
    starters = [
        subprocess.Popen([sys.executable, "-c", STARTER, postgres_url], cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(4)
    ]
    try:
        for process in starters:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        for process in starters:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [process.communicate(timeout=120) for process in starters]
    finally:
        for process in starters:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [p.returncode for p in starters] == [0] * 4, [err for _, err in outcomes]
    assert revision(postgres_url) == NEWEST
