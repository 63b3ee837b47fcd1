"""Run every benchmark and print one table of ratios, with the machine it ran on.

    python bench/run_all.py            # full sizes
    python bench/run_all.py --quick    # small sizes, a minute or two
    python bench/run_all.py --json     # the table as JSON as well
    python bench/run_all.py --postgres postgresql://user:password@127.0.0.1:5432/postgres
                                       # the store's rows on PostgreSQL as well

Each benchmark runs in its own child process (so one's memory or threads do
not colour another's figures) and ends with a machine-readable line,
``BENCH {"benchmark": …, "ratio": …, "value": …, "unit": …, "floor": …}``;
for scripts that print only text, the last ``ratio`` figure in their output is
taken. A script may report several rows (``transfer.py``: ``transfer_floor``,
``transfer``, ``cpu_ms_per_job``), each its own ``BENCH`` line, named in
:data:`BENCHMARKS`. A script that is missing, fails or prints no ratio gets a
row saying so.
Benchmarks that need Redis get a ``redis-server`` of this run's own on a free
loopback port unless ``SYNDICATION_BENCH_REDIS_URL`` names one.

With ``--postgres URL`` (or ``SYNDICATION_BENCH_POSTGRES_URL``), the benchmarks that
take a store run a second time on PostgreSQL, each in a database of its own that
is created empty on that server and dropped afterwards; their rows are named
``… (PostgreSQL)``. The URL's user must be allowed to create databases.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH)]

from _common import machine  # noqa: E402


@dataclass(frozen=True)
class Benchmark:
    """One row of the table: the script, what its ratio means, and its arguments."""

    name: str
    script: str
    meaning: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    needs_redis: bool = False
    extra_rows: tuple[tuple[str, str], ...] = ()
    """Further rows the same script reports (``BENCH`` lines of those names), with what
    each ratio means."""
    takes_store: bool = False
    """The script takes ``--database-url``: with ``--postgres`` it runs on PostgreSQL too."""
    label: str = ""
    """The table's name for the row, where it is not :attr:`name` (``… (PostgreSQL)``)."""

    @property
    def title(self) -> str:
        return self.label or self.name

    def on_postgres(self, database_url: str) -> Benchmark:
        """The same benchmark run against ``database_url``, its rows named for the store."""
        return replace(
            self, args=(*self.args, "--database-url", database_url),
            label=f"{self.name} (PostgreSQL)", takes_store=False)


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("feeds", "feed_building.py",
              "feed building vs bare lxml serialization (floor/measured time)"),
    Benchmark("transfer_floor", "transfer.py",
              "transfers/s vs the floor: the same jobs' bare I/O (no-op message + PUT + two "
              "bare-driver transactions), same Redis broker & threads (goal: ≥ 0.7)",
              needs_redis=True, takes_store=True,
              # 3,000 jobs: at the script's default 900 the timed window is some 3 s, in
              # which the pool's first connections and the first plans weigh as much
              # as the jobs (floor ratios of 0.49–1.01 on PostgreSQL in one hour)
              args=("--listings", "1000"),
              extra_rows=(
                  ("transfer", "transfers/s vs no-op messages/s, same Redis broker & threads"),
                  ("cpu_ms_per_job", "3 ms goal / the worker process's CPU ms per transfer job "
                                     "(≥ 1: within the goal)"),
              )),
    Benchmark("fanout", "fanout.py",
              "`transfer --all` fan-out pairs/s vs the bare driver inserting the same rows, "
              "a worker running", needs_redis=True, takes_store=True),
    Benchmark("transfer_latency_100ms", "latency.py",
              "transfers/s of one concurrent worker process at 100 ms marketplace latency vs "
              "the floor: no-op message + async PUT + two bare transactions, same concurrency",
              needs_redis=True,
              # 3,000 jobs a latency: with latency.py's default 900, about 4 s at 100 ms,
              # most of the run was the ramp of 256 jobs in flight
              args=("--listings", "1000"),
              extra_rows=(
                  ("transfer_latency_0ms", "the same at 0 ms of marketplace latency"),
                  ("transfer_latency_20ms", "the same at 20 ms of marketplace latency"),
              )),
    Benchmark("export_memory", "export_memory.py",
              "full-feed export peak RSS at the largest vs smallest size (flat = 1.0)"),
    Benchmark("final_prices", "final_prices.py",
              "sync listings/s vs bare HTTP deliveries/s of the same documents, "
              "same concurrency"),
    Benchmark("final_prices_latency_30ms", "final_prices.py",
              "sync listings/s with Hemnet answering in 30 ms vs bare deliveries/s of the "
              "same documents, same concurrency and latency (goal: ≥ 800 listings/s)",
              args=("--latency-ms", "30")),
    Benchmark("login", "login.py",
              "median failed login, unknown user / wrong password, interleaved (1.0 = same)"),
    Benchmark("photos", "photos.py",
              "`syndication photos` round vs bare downloads of the same images (floor/measured)",
              quick_args=("--quick",)),
)


@dataclass
class Row:
    benchmark: Benchmark
    status: str = "not available"
    ratio: float | None = None
    value: Any = None
    unit: str | None = None
    floor: Any = None
    floor_unit: str | None = None
    seconds: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


BENCH_LINE = re.compile(r"^BENCH (\{.*\})\s*$")
RATIO_TEXT = re.compile(r"ratio[^0-9\n]{0,40}?([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


def parse_output(stdout: str) -> dict[str, Any] | None:
    """The figures of a benchmark's output: its last ``BENCH {…}`` line, else its last JSON
    object line carrying a ``ratio``, else the last ``ratio … <number>`` in the text."""
    lines = stdout.splitlines()
    for line in reversed(lines):
        match = BENCH_LINE.match(line.strip())
        if match:
            return dict(json.loads(match.group(1)))
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("{") and text.endswith("}"):
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and "ratio" in data:
                return data
    found = RATIO_TEXT.findall(stdout)
    return {"ratio": float(found[-1])} if found else None


def bench_lines(stdout: str) -> dict[str, dict[str, Any]]:
    """Every ``BENCH {…}`` line of an output by its ``benchmark`` name (the last one wins)."""
    found: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        match = BENCH_LINE.match(line.strip())
        if match:
            figures = dict(json.loads(match.group(1)))
            found[str(figures.get("benchmark"))] = figures
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_for_benchmarks() -> Iterator[str | None]:
    """A Redis URL for the benchmarks: the configured one, or a server of our own."""
    configured = os.environ.get("SYNDICATION_BENCH_REDIS_URL")
    binary = shutil.which("redis-server")
    if configured or binary is None:
        yield configured
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def empty_postgres_database(server_url: str, name: str) -> Iterator[str]:
    """A database called ``name`` created empty on the server of ``server_url`` for one
    benchmark, and dropped after it; the URL of that database."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from syndication.store.db import make_engine

    admin = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_one(
    benchmark: Benchmark, quick: bool, redis_url: str | None, timeout: float
) -> list[Row]:
    """Run one benchmark script in a child process and read its rows: its own, then its
    :attr:`Benchmark.extra_rows`."""
    row = Row(benchmark)
    suffix = benchmark.title.removeprefix(benchmark.name)
    extras = [Row(Benchmark(name, benchmark.script, meaning, label=name + suffix))
              for name, meaning in benchmark.extra_rows]
    script = BENCH / benchmark.script
    if not script.exists():
        return [row, *extras]
    python_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": python_path}
    if redis_url:
        env.setdefault("SYNDICATION_BENCH_REDIS_URL", redis_url)
        env.setdefault("SYNDICATION_TEST_REDIS_URL", redis_url)
    extra = benchmark.quick_args if quick else ()
    command = [sys.executable, str(script), *benchmark.args, *extra]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        for each in (row, *extras):
            each.status = f"timed out after {timeout:.0f} s"
        return [row, *extras]
    seconds = round(time.perf_counter() - started, 1)
    named = bench_lines(done.stdout)
    found = [named.get(benchmark.name) or parse_output(done.stdout),
             *(named.get(extra.benchmark.name) for extra in extras)]
    for each, figures in zip((row, *extras), found, strict=True):
        each.seconds = seconds
        if done.returncode != 0 or figures is None or figures.get("ratio") is None:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
            each.status = f"failed (exit {done.returncode}): {last[0][:120]}"
            continue
        each.status = "ok"
        each.ratio = float(figures["ratio"])
        each.value, each.unit = figures.get("value"), figures.get("unit")
        each.floor, each.floor_unit = figures.get("floor"), figures.get("floor_unit")
        each.detail = figures
    return [row, *extras]


def _figure(value: Any, unit: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        value = f"{value:,.1f}" if value >= 100 else f"{value:.3g}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value} {unit}" if unit else str(value)


def table(rows: list[Row], facts: dict[str, Any], quick: bool) -> str:
    """The rows as a Markdown table, preceded by the machine."""
    lines = [
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gb']} GB, "
        f"Python {facts['python']} ({facts['system']}); sizes: {'quick' if quick else 'full'}; "
        f"load average {facts['load'][0]} before, {facts['load'][1]} after",
        "",
        "| benchmark | ratio | measured | floor | what the ratio is | run |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "—"
        meaning = row.detail.get("ratio_meaning") or row.benchmark.meaning
        run = f"{row.seconds} s" if row.status == "ok" else row.status
        lines.append(f"| {row.benchmark.title} | {ratio} | {_figure(row.value, row.unit)} | "
                     f"{_figure(row.floor, row.floor_unit)} | {meaning} | {run} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; print one table of ratios.")
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute or two in all)")
    parser.add_argument("--only", action="append", choices=[b.name for b in BENCHMARKS],
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    parser.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    parser.add_argument(
        "--postgres", metavar="URL", default=os.environ.get("SYNDICATION_BENCH_POSTGRES_URL"),
        help="also run the benchmarks that take a store on this PostgreSQL server, each in "
             "an empty database of its own, created and dropped by the run (default: "
             "$SYNDICATION_BENCH_POSTGRES_URL; none: SQLite only)")
    args = parser.parse_args(argv)

    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    with redis_for_benchmarks() as redis_url:
        for benchmark in chosen:
            print(f"running {benchmark.script} …", file=sys.stderr, flush=True)
            rows.extend(run_one(benchmark, args.quick, redis_url if benchmark.needs_redis else None,
                                args.timeout))
            if args.postgres and benchmark.takes_store:
                print(f"running {benchmark.script} on PostgreSQL …", file=sys.stderr, flush=True)
                name = f"bench_{benchmark.name}_{os.getpid()}"
                with empty_postgres_database(args.postgres, name) as database_url:
                    rows.extend(run_one(benchmark.on_postgres(database_url), args.quick,
                                        redis_url if benchmark.needs_redis else None,
                                        args.timeout))
    facts = machine() | {"load": (round(load_before, 1), round(os.getloadavg()[0], 1))}
    print(table(rows, facts, args.quick))
    if args.json:
        print(json.dumps({"machine": facts, "quick": args.quick, "rows": [
            {"benchmark": r.benchmark.title, "status": r.status, "ratio": r.ratio, "value": r.value,
             "unit": r.unit, "floor": r.floor, "floor_unit": r.floor_unit, "seconds": r.seconds}
            for r in rows]}, ensure_ascii=False))
    return 0 if all(row.status == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
