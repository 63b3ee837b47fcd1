"""Every module imports on its own, first, in a fresh interpreter.

An import cycle shows only when the cycle's modules are imported in one
particular order; inside one test process some other test has usually
imported them already. So each module is imported alone, in a process of its
own, as a command or a worker importing it first would: ``import_alone.py``
forks that process from an interpreter that holds only the third-party
libraries, none of the project's modules (a quarter of the CPU time of one
fresh interpreter per module).
"""

from __future__ import annotations

import json
import os
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


def import_alone(names: list[str]) -> dict[str, tuple[int, str]]:
    """Exit status and standard error of importing each of ``names`` first and alone."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "import_alone.py"), *names],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = {}
    for line in done.stdout.splitlines():
        result = json.loads(line)
        results[result["module"]] = (result["code"], result["stderr"])
    assert sorted(results) == sorted(names)
    return results


def test_every_module_imports_first_and_alone() -> None:
    names = modules()
    assert "syndication.registry" in names and "feeds.hemnet" in names
    failures = [
        f"{module}: {(stderr.strip().splitlines() or ['(no message)'])[-1]}"
        for module, (code, stderr) in import_alone(names).items()
        if code != 0 and not (module.startswith(ACTORS) and REFUSAL in stderr)
    ]
    assert not failures, "\n".join(failures)


def test_an_import_fault_shows_as_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """The forked import is as strict as ``python -c "import M"``: a cycle that breaks
    only when one side is imported first fails from that side and not the other, a
    project module loaded by an earlier child is not loaded in the next, and the actors
    refuse as they do alone."""
    package = tmp_path / "syndication_cycle_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import syndication_cycle_probe.b\nA = 1\n")
    (package / "b.py").write_text("from syndication_cycle_probe.a import A\nB = A\n")
    (package / "c.py").write_text(
        "import sys\nassert 'syndication.registry' not in sys.modules, 'left over'\n"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "import_alone.py"), "syndication.registry",
         "syndication_cycle_probe.a", "syndication_cycle_probe.b", "syndication_cycle_probe.c",
         "syndication.jobs"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])},
    )
    results = {r["module"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert results["syndication.registry"]["code"] == 0
    assert results["syndication_cycle_probe.a"]["code"] == 1
    assert "ImportError" in results["syndication_cycle_probe.a"]["stderr"]
    assert results["syndication_cycle_probe.b"]["code"] == 0
    assert results["syndication_cycle_probe.c"]["code"] == 0, results
    assert REFUSAL in results["syndication.jobs"]["stderr"]
    fresh = subprocess.run([sys.executable, "-c", "import syndication_cycle_probe.a"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert fresh.returncode == 1 and "ImportError" in fresh.stderr
    other_side = subprocess.run([sys.executable, "-c", "import syndication_cycle_probe.b"],
                                capture_output=True, text=True, cwd=ROOT, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert other_side.returncode == 0, other_side.stderr


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
