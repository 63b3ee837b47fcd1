"""Feed building: listings per second per marketplace, against bare lxml in the same run.

For N generated listings (``--listings``, default 2000) it builds and
validates each marketplace's create/update document — our whole builder path:
type codes, portrait and logo rules, text cleaning, the lxml tree, XSD
validation and serialization. The floor is lxml alone: building trees of the
very same elements, attributes and texts (taken from our documents before the
clock starts) and serializing them, with none of our logic and no validation.
The ratio is floor time / our time (1.0 would be as fast as bare lxml); each
side runs ``--repeat`` times (default 5, interleaved, garbage collector paused) and its
best run counts, which keeps a busy machine's noise out of the ratio.

    python bench/feed_building.py                 # 2000 listings
    python bench/feed_building.py --listings 10000
    python bench/feed_building.py --quick         # 300 listings
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import abroad_listing, broker, input_bytes, office, report  # noqa: E402
from lxml import etree  # noqa: E402
from sqlmodel import Session  # noqa: E402

from syndication import registry  # noqa: E402
from syndication.ingest import ingest_document  # noqa: E402
from syndication.records import FeedInput  # noqa: E402
from syndication.store.db import make_engine, migrate  # noqa: E402
from syndication.store.repository import load_feed_inputs  # noqa: E402

Shape = list[tuple[int, str, dict[str, str], str | None]]


def feed_inputs(count: int, *, abroad: bool = False) -> list[FeedInput]:
    """``count`` generated listings of one office, ingested into a scratch store the way the
    desktop's records are and loaded back as the records the builders take; ``abroad``:
    homes on the Spanish coast for a marketplace of homes abroad (Kyero)."""
    if abroad:
        rng = random.Random(7)
        document = {
            "offices": [office("OFF1", licence=("kyero",))],
            "users": [broker("OFF1-B1", "OFF1")],
            "listings": [abroad_listing(f"OBJ{n:05d}", "OFF1", "OFF1-B1", rng)
                         for n in range(1, count + 1)],
        }
        raw = json.dumps(document, ensure_ascii=False).encode()
    else:
        raw = input_bytes(count, "OFF1")
    with tempfile.TemporaryDirectory(prefix="bench-feeds-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'store.db'}")
        migrate(engine)
        ingest_document(engine, raw)
        with Session(engine) as session:
            ids = [f"OBJ{n:05d}" for n in range(1, count + 1)]
            loaded = load_feed_inputs(session, ids)
        engine.dispose()
    return [loaded[i] for i in ids]


def shape(document: bytes) -> Shape:
    """The elements of ``document`` as (depth, tag, attributes, text), in document order."""
    root = etree.fromstring(document)
    out: Shape = []

    def walk(element: Any, depth: int) -> None:
        out.append(
            (depth, element.tag, dict(element.attrib), element.text if len(element) == 0 else None)
        )
        for child in element:
            walk(child, depth + 1)

    walk(root, 0)
    return out


def bare_lxml(shapes: list[Shape]) -> float:
    """Seconds to build and serialize trees of the given shapes with lxml alone."""
    gc.collect()
    gc.disable()
    started = time.perf_counter()
    for elements in shapes:
        stack: list[Any] = []
        for depth, tag, attrib, text in elements:
            del stack[depth:]
            node = etree.SubElement(stack[-1], tag, attrib) if stack else etree.Element(tag, attrib)
            if text is not None:
                node.text = text
            stack.append(node)
        etree.tostring(stack[0], encoding="UTF-8", xml_declaration=True, pretty_print=True)
    seconds = time.perf_counter() - started
    gc.enable()
    return seconds


def ours(marketplace: str, inputs: list[FeedInput]) -> tuple[float, list[bytes]]:
    """Seconds to build and validate every document with the registry's builder."""
    build = registry.get(marketplace).build
    gc.collect()
    gc.disable()
    started = time.perf_counter()
    documents = [build(fi) for fi in inputs]
    seconds = time.perf_counter() - started
    gc.enable()
    return seconds, documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=2000, metavar="N")
    parser.add_argument("--quick", action="store_true", help="300 listings")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each side; the best counts")
    args = parser.parse_args(argv)
    count = 300 if args.quick else args.listings
    inputs = feed_inputs(count)
    abroad = feed_inputs(count, abroad=True)

    total_ours = total_floor = 0.0
    per_marketplace: dict[str, dict[str, float]] = {}
    print(f"{count} listings; building + validating vs bare lxml build + serialize")
    names = registry.names()
    for marketplace in names:
        inputs_here = abroad if registry.get(marketplace).pull else inputs
        seconds, documents = ours(marketplace, inputs_here)
        shapes = [shape(d) for d in documents]
        floor = bare_lxml(shapes)
        for _ in range(args.repeat - 1):
            seconds = min(seconds, ours(marketplace, inputs_here)[0])
            floor = min(floor, bare_lxml(shapes))
        total_ours, total_floor = total_ours + seconds, total_floor + floor
        rate, floor_rate = count / seconds, count / floor
        per_marketplace[marketplace] = {
            "per_s": round(rate),
            "floor_per_s": round(floor_rate),
            "ratio": round(floor / seconds, 3),
        }
        print(
            f"  {marketplace:<9} {rate:8.0f} listings/s   floor {floor_rate:8.0f}/s   "
            f"ratio {floor / seconds:.3f} (ours is {seconds / floor:.1f}x the floor's time)"
        )
    report(
        "feeds",
        ratio=round(total_floor / total_ours, 3),
        ratio_meaning=f"bare lxml build+serialize time / our build+validate time, "
        f"{len(names)} marketplaces",
        value=round(len(names) * count / total_ours),
        unit="documents/s (build + XSD validation)",
        floor=round(len(names) * count / total_floor),
        floor_unit="documents/s (bare lxml build + serialize)",
        listings=count,
        marketplaces=per_marketplace,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
