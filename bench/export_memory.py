"""Peak memory of a full-feed export as the office grows (DESIGN §5: "stays flat").

For each size it generates an office of that many listings straight into a
fresh SQLite store (bulk inserts of the store's own tables, so generating
100,000 listings takes seconds), runs ``syndication export`` over it in a child
process, and reads the child's peak resident set size from the kernel
(``os.wait4``). The floor is the same command over an office of a single
listing: the cost of the interpreter, the imports and the schemas. The ratio
is the peak at the largest size over the peak at the smallest; a streaming
export keeps it close to 1.

    python bench/export_memory.py            # 10,000 and 100,000 listings
    python bench/export_memory.py --quick    # 2,000 and 20,000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import broker, listings, office, report  # noqa: E402

from syndication.store.db import make_engine, migrate  # noqa: E402
from syndication.store.models import (  # noqa: E402
    ListingImageRow,
    ListingRow,
    OfficeRow,
    UserRow,
    utcnow,
)

BATCH = 5_000
LISTING_COLUMNS = frozenset(ListingRow.__table__.columns.keys())  # type: ignore[attr-defined]
COLUMN_DEFAULTS = {
    column.name: column.default.arg
    for column in ListingRow.__table__.columns  # type: ignore[attr-defined]
    if column.default is not None and not callable(column.default.arg)
}
"""The listing columns' own defaults (a Swedish listing's country and currency, …)."""


def listing_row(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``listing`` table row of a generated input record (every column present)."""
    row: dict[str, Any] = dict.fromkeys(LISTING_COLUMNS)
    row.update(COLUMN_DEFAULTS)
    row.update(orientations=[], viewings=[], send_final_price=False, updated_at=now)
    flat = {**record, **record.get("address", {})}
    row.update((key, value) for key, value in flat.items() if key in LISTING_COLUMNS)
    return row


def generate_store(url: str, count: int, office_id: str = "OFF1") -> None:
    """A migrated store at ``url`` holding one office, its broker and ``count`` listings."""
    engine = make_engine(url)
    migrate(engine)
    now = utcnow()
    with engine.begin() as conn:
        desk = office(office_id)
        address, contacts = desk.pop("address"), desk.pop("contacts")
        flat_office = {**desk, **address, **contacts}
        conn.execute(OfficeRow.__table__.insert(), [flat_office])  # type: ignore[attr-defined]
        conn.execute(UserRow.__table__.insert(), [broker(f"{office_id}-B1", office_id)])  # type: ignore[attr-defined]
        rows: list[dict[str, Any]] = []
        images: list[dict[str, Any]] = []
        for record in listings(count, office_id):
            for image in record["images"]:
                images.append({"listing_id": record["id"], "url": image["url"],
                               "position": image["order"], "caption": image["caption"],
                               "source": "desktop"})
            rows.append(listing_row(record, now))
            if len(rows) >= BATCH:
                conn.execute(ListingRow.__table__.insert(), rows)  # type: ignore[attr-defined]
                conn.execute(ListingImageRow.__table__.insert(), images)  # type: ignore[attr-defined]
                rows, images = [], []
        if rows:
            conn.execute(ListingRow.__table__.insert(), rows)  # type: ignore[attr-defined]
            conn.execute(ListingImageRow.__table__.insert(), images)  # type: ignore[attr-defined]
    engine.dispose()


def export_command(marketplace: str, office_id: str, output: Path) -> list[str]:
    """The ``syndication export`` invocation measured: the full feed of one office."""
    return [sys.executable, "-m", "syndication", "export", marketplace,
            "--office", office_id, "--output", str(output), "--quiet"]


def measure_export(url: str, marketplace: str, workdir: Path) -> dict[str, Any]:
    """Run one export in a child process; its peak RSS (MB), seconds and output size."""
    output = workdir / f"{marketplace}.xml"
    env = {**os.environ, "SYNDICATION_DATABASE_URL": url, "SYNDICATION_LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen(export_command(marketplace, "OFF1", output), cwd=workdir, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        message = stderr.decode(errors="replace")[-800:]
        raise RuntimeError(f"export failed ({process.returncode}): {message}")
    return {
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "seconds": round(seconds, 2),
        "output_mb": round(output.stat().st_size / 2**20, 1) if output.exists() else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 20,000 listings")
    parser.add_argument("--sizes", help="comma-separated listing counts (default 10000,100000)")
    parser.add_argument("--marketplace", default="hemnet")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [2_000, 20_000] if args.quick else [10_000, 100_000])

    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="export-memory-") as tmp:
        for count in [1, *sizes]:
            workdir = Path(tmp) / str(count)
            workdir.mkdir()
            url = f"sqlite:///{workdir / 'store.db'}"
            generate_store(url, count)
            results[count] = measure_export(url, args.marketplace, workdir)
            print(f"{count:>7} listings: peak {results[count]['peak_mb']:7.1f} MB, "
                  f"{results[count]['seconds']:6.2f} s, output {results[count]['output_mb']} MB")
    floor = results[1]["peak_mb"]
    smallest, largest = results[sizes[0]]["peak_mb"], results[sizes[-1]]["peak_mb"]
    report(
        "export_memory",
        ratio=round(largest / smallest, 2),
        ratio_meaning=f"peak RSS at {sizes[-1]:,} / at {sizes[0]:,} listings (flat = 1.0)",
        value=largest, unit=f"MB peak at {sizes[-1]:,}",
        floor=floor, floor_unit="MB peak at 1 listing",
        sizes={str(k): v for k, v in results.items()},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
