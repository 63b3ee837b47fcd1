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
