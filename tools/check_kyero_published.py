"""Check our Kyero documents against Kyero's own published schema.

    python tools/check_kyero_published.py PUBLISHED_XSD [--generated 300] [--seed 1]

Our ``schemas/kyero-3.0.xsd`` is meant to be narrower than Kyero's published
v3 schema, so that whatever validates against ours validates against theirs.
This checks that claim on real documents: every Kyero listing of
``examples/records.json`` and a few hundred generated homes abroad (every
category, hostile text, optional fields present or absent, images Kyero does
and does not take) go through ingest into a scratch store, are built as Kyero
documents (each validated against our schema by the builder), and are then
validated against the schema given on the command line, one by one and as the
office's whole exported feed. It prints how many were checked and every
failure, and exits 1 when there is one. The published schema is read from the
given path only; nothing of it is kept.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import random
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlmodel import col

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # the shared factory the generator builds on

from feeds import kyero  # noqa: E402
from syndication import registry  # noqa: E402
from syndication.export import export_office  # noqa: E402
from syndication.ingest import ingest_document  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.rules.plan import decide  # noqa: E402
from syndication.store.db import make_engine, migrate, session_scope  # noqa: E402
from syndication.store.models import ListingRow  # noqa: E402
from syndication.store.repository import load_feed_inputs  # noqa: E402

HOSTILE = (
    "<script>alert(1)</script>",
    "&amp; &lt; &nbsp; &#0; &undefined;",
    "]]> <![CDATA[ x ]]> <?xml version='1.0'?> <!-- -->",
    "\x00\x01\x08\x0b\x0c\x1b\x7f\ufffe\uffff",
    "emoji 🏡 and RTL \u202e text",
    "\t\n\r " * 20,
    "Å" * 30_000,
    "Calle d'Alt & \"Mar\"",
)
OPTIONAL = ("bedrooms", "bathrooms", "living_area", "plot_area", "system_id")
OFFICE = "KTR-GEN"


def _bench_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "bench" / "_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(rng: random.Random) -> str:
    words = "".join(rng.choice("abcåäö ÉéñÑ-/&<>'\"\t\n") for _ in range(rng.randint(1, 80)))
    return rng.choice((rng.choice(HOSTILE), words, rng.choice(HOSTILE) + words))


def generated(count: int, seed: int) -> dict[str, Any]:
    """An input document of ``count`` homes abroad, varied as described in the module."""
    common = _bench_common()
    rng = random.Random(seed)
    listings = []
    for n in range(count):
        record = common.abroad_listing(f"GEN-{n:04d}", OFFICE, "GEN-B1", rng)
        record["category"] = common.ABROAD_CATEGORIES[n % len(common.ABROAD_CATEGORIES)] if (
            n % 3
        ) else rng.choice(("parhus", "kedjehus"))
        record.pop("orientations", None)
        if record["category"] == "lantbruk":
            record["orientations"] = rng.choice((["jordbruk"], ["fritid"], ["ovrig", "skogsbruk"]))
        record["currency"] = rng.choice(("EUR", "GBP", "USD"))
        record["address"]["country"] = rng.choice(sorted(kyero.COUNTRIES))
        for name in ("description", "description_en"):
            if rng.random() < 0.6:
                record[name] = _text(rng)
        if rng.random() < 0.5:
            record["headline"] = _text(rng)[:200]
        for name in ("city", "province", "area"):
            if rng.random() < 0.4:
                record["address"][name] = _text(rng)[:100]
        for name in OPTIONAL:
            if rng.random() < 0.4:
                record[name] = None
        if rng.random() < 0.3:
            record["address"]["latitude"] = record["address"]["longitude"] = None
        if rng.random() < 0.3:
            record[rng.choice(("description", "description_en"))] = None
        extra = [f"https://media.example.se/{record['id']}/plan.pdf",
                 f"https://media.example.se/{record['id']}/x.PNG",
                 f"http://media.example.se/{record['id']}/old.gif",
                 f"https://media.example.se/{record['id']}/y.jpeg?w=800"]
        record["images"] += [{"url": url, "order": 10 + i} for i, url in enumerate(extra)
                             if rng.random() < 0.5]
        if rng.random() < 0.1:
            record["images"] = [{"url": f"https://media.example.se/{n}/{i}.jpg", "order": i}
                                for i in range(60)]
        listings.append(record)
    return {
        "offices": [common.office(OFFICE, licence=("kyero",))],
        "users": [common.broker("GEN-B1", OFFICE)],
        "listings": listings,
    }


class Checker:
    """Validates documents against the published schema and keeps the failures."""

    def __init__(self, published: etree.XMLSchema) -> None:
        self.published = published
        self.checked = 0
        self.failures: list[str] = []

    def check(self, what: str, document: bytes) -> None:
        self.checked += 1
        if not self.published.validate(etree.fromstring(document)):
            errors = "; ".join(f"line {e.line}: {e.message}" for e in self.published.error_log)
            self.failures.append(f"{what}: {errors}")


def check_store(checker: Checker, engine: Any, office_ids: list[str]) -> tuple[int, int]:
    """Build and check every stored listing Kyero would show; (built, left out)."""
    built = left_out = 0
    with session_scope(engine) as session:
        query = select(col(ListingRow.id)).where(col(ListingRow.office_id).in_(office_ids))
        inputs = load_feed_inputs(session, list(session.scalars(query)))
    for listing_id in sorted(inputs):
        feed_input = inputs[listing_id]
        if decide(feed_input, kyero.NAME, None).action != "create" or kyero.preconditions(
            feed_input
        ):
            left_out += 1
            continue
        checker.check(f"listing {listing_id!r}", registry.get(kyero.NAME).build(feed_input))
        built += 1
    for office_id in office_ids:
        out = io.BytesIO()
        report = export_office(engine, kyero.NAME, office_id, out, progress=False)
        if report.written:
            checker.check(f"whole feed of office {office_id!r}", out.getvalue())
    return built, left_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("published_xsd", type=Path, help="Kyero's published v3 schema")
    parser.add_argument("--generated", type=int, default=300, help="generated listings")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    configure(level="ERROR", stream=sys.stderr)
    published = etree.XMLSchema(etree.parse(str(args.published_xsd)))
    checker = Checker(published)
    examples = json.loads((ROOT / "examples" / "records.json").read_bytes())
    example_offices = [o["id"] for o in examples["offices"] if "kyero" in o.get("licence", ())]
    with tempfile.TemporaryDirectory(prefix="kyero-check-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'store.db'}")
        migrate(engine)
        report = ingest_document(engine, json.dumps(examples, ensure_ascii=False).encode())
        from_examples = check_store(checker, engine, example_offices)
        document = json.dumps(generated(args.generated, args.seed), ensure_ascii=False).encode()
        gen_report = ingest_document(engine, document)
        from_generated = check_store(checker, engine, [OFFICE])
        engine.dispose()
    print(f"examples: {from_examples[0]} Kyero documents built ({from_examples[1]} left out by "
          f"Kyero's preconditions; ingest rejected {report.rejected})")
    print(f"generated: {from_generated[0]} built of {args.generated} "
          f"({from_generated[1]} left out by the preconditions; ingest rejected "
          f"{gen_report.rejected})")
    print(f"checked {checker.checked} documents against {args.published_xsd.name}: "
          f"{len(checker.failures)} failures")
    for failure in checker.failures:
        print(f"FAIL {failure}")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())
