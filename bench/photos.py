"""Benchmark: one ``syndication photos`` pull round, against bare downloads of the same images.

    python bench/photos.py                            # 40 assignments x 5 images, 2048x1365 JPEGs
    python bench/photos.py --assignments 100 --images 8 --width 3000
    python bench/photos.py --quick                    # 8 assignments x 3 images

Starts the portal stand-in (``adapters.portal_standin.PortalStandIn``) on loopback
in a process of its own and fills it, through its photographers' API, with
``--assignments`` assignments at status 1, each with ``--images`` distinct JPEGs
made with Pillow (noise over a gradient, so they are about the size of real
listing photos rather than a few kilobytes of one colour). The listings they
name are ingested into a temporary SQLite store with ``syndication.ingest``, one
per assignment, each with its ``system_id``; the media folder is in the same
temporary directory.

Measured in the same run, against the same stand-in:

* floor -- every image's bytes fetched with ``GET /api/images/{id}/content``
  through one pooled ``requests.Session``, one after the other, as the intake
  does: no verification, nothing written (best of ``--repeat``);
* pull -- one full ``syndication photos --no-progress`` round, called in-process
  through the CLI's entry point (``syndication.cli.main``) with the settings in
  the environment: list the ready assignments, read each, stream each image to a
  staging file with fsync, verify it with Pillow (header, then a full decode),
  SHA-256, store it under its content-addressed name, attach the assignment's
  images in one transaction, set the assignment to status 2.

Then it checks that the CLI exited 0, that every assignment is at status 2 in the
portal and that every image is attached to its listing, in the portal's order,
with the portal's SHA-256 and its file in the media folder; any miss is an error
(exit 1). It prints images/s for both and ratio = floor time / pull time (1.0 =
as fast as the bare downloads). The last line is ``BENCH {json}`` for
``bench/run_all.py``.

The stand-in sets ``TCP_NODELAY`` on its sockets, as the sandbox marketplaces
do: with Nagle's algorithm on, each small JSON answer on a kept-alive
connection would wait for the client's delayed ACK, about 40 ms. Logging is at WARNING unless
``SYNDICATION_LOG_LEVEL`` says otherwise, so the output stays readable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import requests  # noqa: E402
from _common import input_document, machine, report  # noqa: E402
from sqlalchemy import select  # noqa: E402

from syndication.cli import build_parser  # noqa: E402
from syndication.cli import main as cli_main  # noqa: E402
from syndication.ingest import ingest_document  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.store import make_engine, migrate  # noqa: E402
from syndication.store.db import session_scope  # noqa: E402
from syndication.store.models import ListingImageRow  # noqa: E402

TOKEN = "bench-portal-token"
TIMEOUT = (5.0, 60.0)

PORTAL = r"""
import io, json, random, sys
from PIL import Image
from adapters.portal_standin import STATUS_READY, PortalStandIn

token, assignments, images, width, seed = sys.argv[1], *map(int, sys.argv[2:6])
height = width * 2 // 3
rng = random.Random(seed)
field = Image.effect_noise((width + 256, height + 256), 24)
gradient = Image.linear_gradient("L").resize((width, height))
portal = PortalStandIn(token=token).start()
layout, total = [], 0
for a in range(1, assignments + 1):
    system_id = f"NEXT-{a:05d}"
    assignment = portal.create_assignment(system_id, f"Fotografering {system_id}")
    ids = []
    for n in range(1, images + 1):
        x, y = rng.randrange(256), rng.randrange(256)
        red = field.crop((x, y, x + width, y + height))
        blue = Image.new("L", (width, height), rng.randrange(256))
        buffer = io.BytesIO()
        Image.merge("RGB", (red, gradient, blue)).save(buffer, "JPEG", quality=85)
        total += buffer.tell()
        ids.append(portal.upload_image(assignment, buffer.getvalue(), title=f"Bild {n}",
                                       tag="interior" if n > 1 else "fasad", order=n))
    portal.set_status(assignment, STATUS_READY)
    layout.append({"id": assignment, "system_id": system_id, "images": ids})
print(json.dumps({"url": portal.url, "bytes": total, "height": height, "assignments": layout}),
      flush=True)
sys.stdin.read()
portal.stop()
"""
"""The stand-in's process: fills the portal, prints its URL and layout as one JSON
line, and serves until its standard input is closed."""


def start_portal(assignments: int, images: int, width: int,
                 seed: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-c", PORTAL, TOKEN, str(assignments), str(images), str(width),
         str(seed)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                          os.environ.get("PYTHONPATH", "")])},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise RuntimeError(f"the portal stand-in did not start (exit {process.returncode})")
    return process, json.loads(line)


def stop_portal(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(timeout=10)


def ingest_listings(database_url: str, assignments: list[dict[str, Any]]) -> None:
    """One generated listing per assignment, with the system id the assignment names."""
    document = input_document(len(assignments), "OFF1", prefix="OBJ")
    for record, assignment in zip(document["listings"], assignments, strict=True):
        record["system_id"] = assignment["system_id"]
    engine = make_engine(database_url)
    try:
        migrate(engine)
        result = ingest_document(engine, json.dumps(document, ensure_ascii=False).encode())
        if not result.ok:
            raise RuntimeError(f"the generated listings were not all taken: {result}")
    finally:
        engine.dispose()


def floor_downloads(url: str, image_ids: list[str]) -> tuple[float, int]:
    """Seconds to fetch every image's bytes through one pooled session; the bytes read."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    size = 0
    try:
        started = time.perf_counter()
        for image_id in image_ids:
            response = session.get(f"{url}/api/images/{image_id}/content", timeout=TIMEOUT)
            response.raise_for_status()
            size += len(response.content)
        seconds = time.perf_counter() - started
    finally:
        session.close()
    return seconds, size


def pull_round(environ: dict[str, str]) -> tuple[float, int]:
    """Seconds of one ``syndication photos --no-progress`` round and its exit status."""
    saved = dict(os.environ)
    os.environ.update(environ)
    try:
        started = time.perf_counter()
        status = cli_main(["photos", "--no-progress"])
        return time.perf_counter() - started, status
    finally:
        os.environ.clear()
        os.environ.update(saved)


def verify(url: str, database_url: str, media_dir: Path,
           assignments: list[dict[str, Any]]) -> list[str]:
    """Every way the round fell short: an assignment not at 2, an image missing or wrong."""
    errors: list[str] = []
    listing_of = {f"OBJ{n:05d}": a["id"] for n, a in enumerate(assignments, start=1)}
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        rows = list(session.scalars(select(ListingImageRow)))
    engine.dispose()
    portal_rows: dict[str, list[ListingImageRow]] = {}
    desktop_top: dict[str, int] = {}
    for row in rows:
        if row.source == "portal":
            portal_rows.setdefault(row.listing_id, []).append(row)
        else:
            desktop_top[row.listing_id] = max(desktop_top.get(row.listing_id, -1), row.position)
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        for listing_id, assignment_id in listing_of.items():
            state = http.get(f"{url}/api/assignments/{assignment_id}", timeout=TIMEOUT).json()
            if state["status"] != 2:
                errors.append(f"assignment {assignment_id} is at status {state['status']}, not 2")
            attached = sorted(portal_rows.get(listing_id, []), key=lambda r: r.position)
            expected = sorted(state["images"], key=lambda i: (i["order"], i["id"]))
            got = [(r.portal_image_id, r.sha256) for r in attached]
            if got != [(i["id"], i["sha256"]) for i in expected]:
                errors.append(f"listing {listing_id}: {len(got)} images attached, not the "
                              f"{len(expected)} of {assignment_id} in order with their SHA-256")
            if attached and attached[0].position <= desktop_top.get(listing_id, -1):
                errors.append(f"listing {listing_id}: portal images not after the desktop's")
            missing = [r.media_path for r in attached
                       if not r.media_path or not (media_dir / r.media_path).is_file()]
            if missing:
                errors.append(f"listing {listing_id}: no file for {', '.join(map(str, missing))}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignments", type=int, default=40, metavar="N",
                        help="assignments at status 1, one listing each (default 40)")
    parser.add_argument("--images", type=int, default=5, metavar="M",
                        help="images per assignment (default 5)")
    parser.add_argument("--width", type=int, default=2048,
                        help="image width in pixels, height 2/3 of it (default 2048)")
    parser.add_argument("--quick", action="store_true", help="8 assignments x 3 images")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of the floor; the best counts (default 5)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        args.assignments, args.images = 8, 3
    if args.assignments < 1 or args.images < 1 or args.width < 150 or args.repeat < 1:
        parser.error("--assignments, --images and --repeat must be at least 1, --width 150")
    os.environ.setdefault("SYNDICATION_LOG_LEVEL", "WARNING")
    configure(os.environ["SYNDICATION_LOG_LEVEL"])
    build_parser()  # import every command module before any clock starts

    with tempfile.TemporaryDirectory(prefix="bench-photos-") as scratch:
        database_url = f"sqlite:///{Path(scratch) / 'store.db'}"
        media_dir = Path(scratch) / "media"
        started = time.perf_counter()
        portal, filled = start_portal(args.assignments, args.images, args.width, args.seed)
        try:
            assignments = filled["assignments"]
            image_ids = [image for a in assignments for image in a["images"]]
            count, megabytes = len(image_ids), filled["bytes"] / 1e6
            ingest_listings(database_url, assignments)
            print(f"portal stand-in (own process, loopback): {len(assignments)} assignments x "
                  f"{args.images} JPEGs of {args.width}x{filled['height']}, {megabytes:.1f} MB; "
                  f"{len(assignments)} listings ingested; set up in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)

            floor_seconds = float("inf")
            for _ in range(args.repeat):
                seconds, size = floor_downloads(filled["url"], image_ids)
                if size != filled["bytes"]:
                    print(f"error: the floor read {size} bytes, the portal holds "
                          f"{filled['bytes']}", file=sys.stderr)
                    return 1
                floor_seconds = min(floor_seconds, seconds)

            pull_seconds, status = pull_round({
                "SYNDICATION_DATABASE_URL": database_url,
                "SYNDICATION_MEDIA_DIR": str(media_dir),
                "SYNDICATION_MEDIA_BASE_URL": "https://media.example.se/",
                "SYNDICATION_PHOTO_PORTAL_URL": filled["url"],
                "SYNDICATION_PHOTO_PORTAL_TOKEN": TOKEN,
            })
            errors = verify(filled["url"], database_url, media_dir, assignments)
        finally:
            stop_portal(portal)

    if status != 0:
        errors.insert(0, f"syndication photos exited {status}")
    if errors:
        for error in errors[:20]:
            print(f"error: {error}", file=sys.stderr)
        print(f"error: {len(errors)} problem(s) after the pull round", file=sys.stderr)
        return 1

    rate, floor_rate = count / pull_seconds, count / floor_seconds
    ratio = floor_seconds / pull_seconds
    facts = machine()
    print(f"machine: {facts['cpu']}, {facts['cores']} cores; store SQLite, media folder on "
          f"the temporary directory's disk")
    print(f"floor: {count} images in {floor_seconds:.2f} s = {floor_rate:,.1f} images/s "
          f"({megabytes / floor_seconds:,.0f} MB/s; bare downloads, one requests.Session, "
          f"best of {args.repeat})")
    print(f"pull:  {count} images in {pull_seconds:.2f} s = {rate:,.1f} images/s "
          f"({megabytes / pull_seconds:,.0f} MB/s; one `syndication photos` round)")
    print(f"verified: {count}/{count} images attached in the portal's order, "
          f"{len(assignments)}/{len(assignments)} assignments at status 2")
    print(f"ratio floor/pull: {ratio:.2f} (the pull takes {pull_seconds / floor_seconds:.1f}x "
          f"the bare downloads' time)")
    report(
        "photos",
        ratio=round(ratio, 3),
        ratio_meaning="bare download time / `syndication photos` round time, same images, "
                      "same HTTP",
        value=round(rate, 1),
        unit="images/s (`syndication photos` round)",
        floor=round(floor_rate, 1),
        floor_unit="images/s (bare downloads, one requests.Session)",
        assignments=len(assignments),
        images=count,
        megabytes=round(megabytes, 1),
        width=args.width,
        seconds=round(pull_seconds, 2),
        floor_seconds=round(floor_seconds, 3),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
