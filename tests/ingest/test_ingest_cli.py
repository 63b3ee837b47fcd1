"""``syndication ingest``: output and exit statuses, through the real command line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import factories
import pytest
import structlog

from syndication.cli import main

GOOD = factories.document(users=[], listings=[factories.listing(state="coming", broker_id=None)])


@pytest.fixture(autouse=True)
def _forget_cli_logging() -> Iterator[None]:
    """``main()`` points structlog at the captured stderr of this test; undo that after it."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store.db"
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", f"sqlite:///{path}")
    return path


def run(tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    file = tmp_path / "in.json"
    file.write_bytes(content)
    status = main(["ingest", str(file)])
    out, err = capsys.readouterr()
    return status, out, err


def test_all_taken_exits_0(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(tmp_path, json.dumps(GOOD).encode(), capsys)
    assert status == 0 and "1 offices, 0 users, 1 listings taken" in out


def test_some_rejected_exits_1_and_names_them(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slott = factories.listing("O2", category="slott", state="coming", broker_id=None)
    bad = dict(GOOD, listings=[*GOOD["listings"], slott])
    status, out, _ = run(tmp_path, json.dumps(bad).encode(), capsys)
    assert status == 1
    assert "rejected: listing 'O2': field 'category': 'slott' is not one of" in out
    assert "1 records rejected" in out


@pytest.mark.parametrize("content", [b"{not json", b"[]", b"[" * 50_000])
def test_unusable_file_exits_2_without_traceback(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    status, _, err = run(tmp_path, content, capsys)
    assert status == 2 and err.startswith("error: document") and "Traceback" not in err


def test_missing_file_exits_2(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "/nonexistent/records.json"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_stdin(database: Path, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(GOOD).encode()))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["ingest", "-"]) == 0
