"""``syndication ingest FILE`` on hostile files: a clear answer and exit status, no traceback.

Runs the real command in a child process, as the desktop integration or an
operator would, against a SQLite store that already holds good records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bench_common as _common
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_ingest(
    tmp_path: Path, raw: bytes, name: str = "input.json"
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_bytes(raw)
    env = {**os.environ, "SYNDICATION_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "PYTHONPATH": str(ROOT), "SYNDICATION_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "syndication", "ingest", str(path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def good_document() -> dict:
    return _common.input_document(2, "CLI", prefix="C")


def with_broken_listing(field: str, raw_value: str) -> bytes:
    """The good document plus listing C00009 whose ``field`` is the raw JSON ``raw_value``."""
    document = good_document()
    broken = dict(document["listings"][0], id="C00009")
    broken[field] = "@@VALUE@@"
    return json.dumps(document | {"listings": [*document["listings"], broken]}).encode().replace(
        b'"@@VALUE@@"', raw_value.encode())


CASES: dict[str, tuple[bytes, int]] = {
    "invalid-utf8": (b'{"listings": [{"id": "\xff\xfe"}]}', 2),
    "deeply-nested": (b'{"listings": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", 2),
    "xml-not-json": (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', 2),
    "lone-surrogate-escape": (with_broken_listing("headline", '"Villa \\ud800 i sol"'), 1),
    "escape-sequence-in-key": (with_broken_listing("\u001b[2J\u001b[31mfield", '"x"'), 1),
    "control-characters": (with_broken_listing("description", '"a\\u0000b\\u001bc\\u007f"'), 0),
    "ten-thousand-images": (with_broken_listing("images", json.dumps(
        [{"url": f"https://m.example/{n}.jpg"} for n in range(10_000)])), 1),
}


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
def test_ingest_answers_hostile_files_without_a_traceback(tmp_path: Path, case: str) -> None:
    first = run_ingest(tmp_path, json.dumps(good_document()).encode(), "good.json")
    assert first.returncode == 0, first.stderr
    raw, expected_status = CASES[case]
    done = run_ingest(tmp_path, raw)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    assert "\x1b" not in output, "an escape sequence from the input reached the terminal"
    assert done.returncode == expected_status, output[-2000:]
    if expected_status == 2:
        assert done.stderr.startswith("error: document"), done.stderr[:500]
    if expected_status == 1:
        assert "rejected: listing 'C00009': field '" in done.stdout, done.stdout[:2000]
    recheck = run_ingest(tmp_path, json.dumps(good_document()).encode(), "good.json")
    assert "2 listings taken" in recheck.stdout and "0 new listings" in recheck.stdout, (
        "the records stored before the hostile file were lost: " + recheck.stdout)


def test_a_fifty_megabyte_file_is_read_and_answered(tmp_path: Path) -> None:
    document = good_document()
    document["listings"].append(dict(document["listings"][0], id="C00009",
                                     description="Stor text. " * 4_800_000))
    raw = json.dumps(document).encode()
    assert len(raw) > 50 * 2**20
    done = run_ingest(tmp_path, raw)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 1
    assert "rejected: listing 'C00009': field 'description': is too long" in done.stdout
    assert "2 listings taken" in done.stdout
