"""Every module imports on its own, first, in a fresh interpreter.

An import cycle shows only when the cycle's modules are imported in one
particular order; inside one test process some other test has usually
imported them already. So each module is imported alone, in a process of its
own, as a command or a worker importing it first would.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("syndication", "feeds", "adapters")


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _import_alone(module: str) -> tuple[str, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT,
        timeout=120,
    )
    return module, done.returncode, done.stderr


def test_every_module_imports_first_and_alone() -> None:
    names = modules()
    assert "syndication.registry" in names and "feeds.hemnet" in names
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [
            f"{module}: {stderr.strip().splitlines()[-1]}"
            for module, code, stderr in pool.map(_import_alone, names)
            if code != 0 and not (module.startswith(ACTORS) and REFUSAL in stderr)
        ]
    assert not failures, "\n".join(failures)


ACTORS = "syndication.jobs"
REFUSAL = "imported before the broker was set up"
"""The actor modules are the one exception: alone, before the broker is set up, they must
refuse with this clear error (dramatiq would otherwise declare them on a default broker
without our middleware)."""


def test_every_benchmark_and_tool_starts() -> None:
    """Each script of ``bench/`` and ``tools/`` answers ``--help`` from a fresh process:
    it imports, and nothing in ``bench/`` shadows a package of the project's."""
    scripts = sorted(
        p for folder in ("bench", "tools") for p in (ROOT / folder).glob("*.py")
        if not p.name.startswith("_") and p.name != "factories.py"
    )
    assert len(scripts) >= 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda p: subprocess.run(
            [sys.executable, str(p), "--help"], capture_output=True, text=True, cwd=ROOT,
            timeout=120,
        ), scripts))
    failures = [f"{p.name}: {r.stderr.strip()[-300:]}" for p, r in zip(scripts, runs, strict=True)
                if r.returncode != 0]
    assert not failures, "\n".join(failures)


def test_the_store_and_feed_benchmarks_run_on_tiny_sizes() -> None:
    """The two benchmarks that build records and rows of their own run through, small, so a
    new record field or marketplace cannot break them unnoticed (speed is not judged)."""
    runs = [
        [str(ROOT / "bench" / "feed_building.py"), "--listings", "20", "--repeat", "1"],
        [str(ROOT / "bench" / "export_memory.py"), "--sizes", "20,40"],
    ]
    for argv in runs:
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "BENCH {" in done.stdout
