"""``bench/run_all.py``: one table of every benchmark's rows, PostgreSQL's as well.

The benchmarks themselves are not run here (they are measurements, not tests); a
small script of the test's own stands in for one, so what is checked is the
table: its rows, their names, and the database a PostgreSQL row runs in.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import text

from syndication.store.db import make_engine

ROOT = Path(__file__).resolve().parent.parent

# The stand-in prints its arguments in its figures, and on PostgreSQL checks
# that the database it was given exists and is empty.
STAND_IN = textwrap.dedent(
    """
    import json, sys
    args = sys.argv[1:]
    url = args[args.index("--database-url") + 1] if "--database-url" in args else None
    tables = None
    if url:
        from sqlalchemy import inspect
        from syndication.store.db import make_engine
        engine = make_engine(url)
        tables = inspect(engine).get_table_names()
        engine.dispose()
    for name, ratio in (("standin", 0.5), ("standin_cpu", 2.0)):
        print("BENCH " + json.dumps({"benchmark": name, "ratio": ratio, "value": ratio,
                                     "unit": "x", "args": args, "database_url": url,
                                     "tables": tables}))
    """
)


@pytest.fixture
def run_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``bench/run_all.py`` as a module, its scripts folder holding only the stand-in."""
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    (tmp_path / "standin.py").write_text(STAND_IN)
    monkeypatch.setattr(module, "BENCH", tmp_path)
    stand_in = module.Benchmark(
        "standin", "standin.py", "the stand-in's ratio", args=("--listings", "3"),
        takes_store=True, extra_rows=(("standin_cpu", "its second row"),))
    monkeypatch.setattr(module, "BENCHMARKS", (stand_in,))
    yield module
    sys.path[:] = saved_path


def test_a_benchmarks_rows_are_read_by_name_with_its_arguments(run_all: ModuleType) -> None:
    rows = run_all.run_one(run_all.BENCHMARKS[0], False, None, 60)

    assert [(row.benchmark.title, row.status, row.ratio) for row in rows] == [
        ("standin", "ok", 0.5), ("standin_cpu", "ok", 2.0)]
    assert rows[0].detail["args"] == ["--listings", "3"]
    assert rows[0].detail["database_url"] is None


def test_with_postgres_each_store_benchmark_runs_again_in_an_empty_database_then_dropped(
    run_all: ModuleType, postgres_admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_all.main(["--json", "--postgres", postgres_admin_url]) == 0

    out = capsys.readouterr().out
    table = json.loads(out.strip().splitlines()[-1])
    assert [(row["benchmark"], row["ratio"]) for row in table["rows"]] == [
        ("standin", 0.5), ("standin_cpu", 2.0),
        ("standin (PostgreSQL)", 0.5), ("standin_cpu (PostgreSQL)", 2.0)]
    assert "| standin (PostgreSQL) | 0.50 |" in out
    assert "| standin_cpu (PostgreSQL) | 2.00 |" in out
    assert postgres_admin_url not in out  # nor its password

    admin = make_engine(postgres_admin_url)
    try:
        with admin.connect() as connection:
            left = connection.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'bench_standin_%'")).all()
    finally:
        admin.dispose()
    assert left == []


def test_the_postgres_database_is_empty_while_the_benchmark_runs(
    run_all: ModuleType, postgres_admin_url: str
) -> None:
    name = f"bench_empty_{uuid.uuid4().hex[:12]}"
    with run_all.empty_postgres_database(postgres_admin_url, name) as url:
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE left_behind (id integer)"))
        engine.dispose()
    # a second run under the same name starts from nothing
    with run_all.empty_postgres_database(postgres_admin_url, name) as url:
        rows = run_all.run_one(run_all.BENCHMARKS[0].on_postgres(url), False, None, 60)
    assert rows[0].detail["database_url"] == url
    assert rows[0].detail["tables"] == []
    assert rows[0].detail["args"] == ["--listings", "3", "--database-url", url]
    assert [row.benchmark.title for row in rows] == [
        "standin (PostgreSQL)", "standin_cpu (PostgreSQL)"]
