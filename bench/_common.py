"""What the benchmarks and the fault tests share: generated input and a report line.

The records come from ``bench/factories.py``, the one factory of the tests and
the benchmarks; the names here are the benchmarks' agency over it.
:func:`input_document` builds an input document (``offices``, ``users``,
``listings``, valid per ``schemas/``'s input schema) of any size, deterministic
for a given seed, so a fault test, a benchmark and a hostile-input test all
start from records the desktop could have sent. :func:`report` prints the one
machine-readable line every benchmark ends with; ``bench/run_all.py`` reads it.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
from collections.abc import Iterator
from typing import Any

import factories

MARKETPLACES = factories.MARKETPLACES
CATEGORIES = factories.VARIED_CATEGORIES
STREETS = factories.STREETS
CITIES = factories.CITIES


def office(office_id: str = "OFF1", *, licence: tuple[str, ...] = MARKETPLACES) -> dict[str, Any]:
    """An office licensed for ``licence``, with defaults selecting every licensed marketplace,
    a logo, an address and contacts."""
    return factories.office(
        office_id,
        name=f"Mäklarbyrån {office_id}",
        licence=list(licence),
        category_defaults={category: list(licence) for category in CATEGORIES},
        logo_url=f"https://media.example.se/{office_id}/logo.png",
        address={"street": "Drottninggatan 1", "postal_code": "75310", "city": "Uppsala"},
        contacts={"phone": "018-100 200", "email": f"info@{office_id.lower()}.example.se",
                  "website": f"https://{office_id.lower()}.example.se"},
    )


def broker(user_id: str, office_id: str) -> dict[str, Any]:
    """A broker shown on the internet, with a portrait."""
    return factories.user(
        user_id,
        office_id=office_id,
        name=f"Mäklare {user_id}",
        email=f"{user_id.lower()}@example.se",
        phone="070-123 45 67",
        title="Fastighetsmäklare",
        show_on_internet=True,
        images=[{"url": f"https://media.example.se/{user_id}.jpg", "category": "portratt",
                 "to_internet": True, "order": 0}],
    )


def listing(listing_id: str, office_id: str, broker_id: str, rng: random.Random) -> dict[str, Any]:
    """A listing for sale that meets every marketplace's preconditions, drawn from ``rng``."""
    return factories.varied_listing(listing_id, rng, office_id=office_id, broker_id=broker_id)


COAST = (
    ("Marbella", "Málaga", "29602", 36.51, -4.88),
    ("Estepona", "Málaga", "29680", 36.43, -5.15),
    ("Nerja", "Málaga", "29780", 36.75, -3.87),
    ("Altea", "Alicante", "03590", 38.60, -0.05),
    ("Jávea", "Alicante", "03730", 38.79, 0.17),
    ("Torrevieja", "Alicante", "03181", 37.98, -0.68),
)
"""Towns of the Costa del Sol and the Costa Blanca: town, province, postcode, latitude,
longitude."""
ABROAD_CATEGORIES = ("villa", "radhus", "bostadsratt", "fritidshus", "tomt", "lantbruk")


def abroad_listing(listing_id: str, office_id: str, broker_id: str, rng: random.Random,
                   *, marketplaces: tuple[str, ...] = ("kyero",)) -> dict[str, Any]:
    """A home for sale on the Spanish coast, priced in euros, with English and Swedish
    texts, that meets Kyero's preconditions."""
    category = rng.choice(ABROAD_CATEGORIES)
    town, province, postcode, latitude, longitude = rng.choice(COAST)
    record: dict[str, Any] = {
        "id": listing_id,
        "office_id": office_id,
        "broker_id": broker_id,
        "category": category,
        "state": "for_sale",
        "address": {
            "street": f"Calle del Mar {rng.randint(1, 90)}",
            "postal_code": postcode,
            "city": town,
            "municipality": town,
            "province": province,
            "country": "ES",
            "area": rng.choice(("Casco antiguo", "Playa", "Urbanización", None)),
            "latitude": round(latitude + rng.uniform(-0.02, 0.02), 6),
            "longitude": round(longitude + rng.uniform(-0.02, 0.02), 6),
        },
        "price": rng.randrange(150_000, 2_500_000, 5_000),
        "currency": "EUR",
        "price_type": "asking",
        "living_area": float(rng.randint(45, 400)),
        "plot_area": float(rng.randint(200, 5_000)) if category != "bostadsratt" else None,
        "rooms": float(rng.randint(2, 8)),
        "bedrooms": rng.randint(1, 5),
        "bathrooms": rng.randint(1, 4),
        "headline": f"Sol och hav i {town}",
        "description": f"Ljust hem med terrass och havsutsikt i {town}. " * 3,
        "description_en": f"Bright home with a terrace and sea views in {town}. " * 3,
        "images": [
            {"url": f"https://media.example.se/{listing_id}/{n}.jpg", "order": n,
             "caption": f"Bild {n + 1}", "tag": rng.choice(("exterior", "interior", None))}
            for n in range(rng.randint(1, 6))
        ],
        "marketplaces": list(marketplaces),
        "modified_at": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(7, 20):02d}:"
                       f"{rng.randint(0, 59):02d}:00+01:00",
    }
    if category == "lantbruk":
        record["orientations"] = rng.choice((["jordbruk"], ["fritid"], ["hastgard", "skogsbruk"]))
    return record


def listings(count: int, office_id: str = "OFF1", *, seed: int = 7,
             prefix: str = "OBJ") -> Iterator[dict[str, Any]]:
    """``count`` listings of one office, ids ``{prefix}00001`` …, broker ``{office_id}-B1``."""
    rng = random.Random(seed)
    for n in range(1, count + 1):
        yield listing(f"{prefix}{n:05d}", office_id, f"{office_id}-B1", rng)


def input_document(count: int, office_id: str = "OFF1", *, seed: int = 7,
                   prefix: str = "OBJ") -> dict[str, Any]:
    """An input document with one office, its broker and ``count`` listings."""
    return {
        "offices": [office(office_id)],
        "users": [broker(f"{office_id}-B1", office_id)],
        "listings": list(listings(count, office_id, seed=seed, prefix=prefix)),
    }


def input_bytes(count: int, office_id: str = "OFF1", **kwargs: Any) -> bytes:
    """:func:`input_document` as the UTF-8 JSON the desktop sends."""
    return json.dumps(input_document(count, office_id, **kwargs), ensure_ascii=False).encode()


def machine() -> dict[str, Any]:
    """CPU model, cores, memory and Python of this machine, for the benchmark table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def report(benchmark: str, **figures: Any) -> None:
    """Print the final machine-readable line of a benchmark: ``BENCH {json}``.

    ``figures`` should hold ``ratio`` (the headline figure against the floor),
    ``value``/``unit`` (the measured rate or size) and ``floor``/``floor_unit``.
    """
    print("BENCH " + json.dumps({"benchmark": benchmark, **figures}, ensure_ascii=False))
    sys.stdout.flush()
